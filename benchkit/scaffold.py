"""``benchkit new plugin NAME``: a plugin package ready to install, with an aggregator, a dataset, a grid that uses
them next to built-in plugins, and a test.

``docs/examples/benchkit-example-plugin`` is these templates rendered for ``benchkit-example-plugin``
(``tests/test_plugin_package.py`` keeps the two equal). From NAME come the distribution name (NAME), the import
package (``benchkit_acme`` for ``benchkit-acme``) and a short name that prefixes entry points and registered names
(``acme``: ``benchkit-`` and ``-plugin`` are dropped), so that two scaffolded packages do not clash.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path
from string import Template

from benchkit.errors import BenchkitError

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "benchkit plugin: the $short-maxmean aggregator and the $short-flicker dataset"
requires-python = ">=3.11"
# benchkit itself is the host: install this package into the environment that has benchkit.

# One entry point per module, "<short>.<what>" = "<module>": each loads (or fails) on its own.
[project.entry-points.benchkit]
"$short.aggregator" = "$package.aggregator"
"$short.dataset" = "$package.dataset"

[tool.setuptools]
packages = ["$package"]
'''

INIT = '''\
"""$dist: a benchkit plugin package (see docs/plugins.md in benchkit)."""
'''

AGGREGATOR = '''\
"""``$short-maxmean``: the max and the mean over every token, as two prefix tokens."""

import torch

from benchkit.hookspecs import hookimpl


class MaxMean(torch.nn.Module):
    """Max and mean over every token → two prefix tokens."""

    num_tokens = 2

    def __init__(self, spec, scale: float = 1.0):
        super().__init__()
        self.out_dim, self.scale = spec.dim, scale

    def forward(self, x):  # (B, T, D) at the frame level, (B, T, P, D) at the patch level
        x = x.flatten(1, -2)
        return self.scale * torch.stack([x.amax(dim=1), x.mean(dim=1)], dim=1)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("$short-maxmean", MaxMean, levels=("frame", "patch"))
'''

DATASET = '''\
"""``$short-flicker``: clips of noise, each bright or dark; the target is that one action. Seeded, instant, CPU."""

import numpy as np

from benchkit.hookspecs import hookimpl
from benchkit.vocabulary import Vocabulary


class Flicker:
    """Noise clips, each bright or dark: one action per clip."""

    vocabulary = Vocabulary(("dark", "bright"))

    def __init__(self, clips: int = 24, frames: int = 4, size: int = 16, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 2, clips)
        noise = rng.integers(0, 128, (clips, frames, size, size, 3))
        self.clips = (noise + 127 * self.labels[:, None, None, None, None]).astype(np.uint8)
        self.key = f"$short-flicker-v1:{clips}:{frames}:{size}:{seed}"

    def __len__(self):
        return len(self.clips)

    def fingerprint(self):  # part of the feature-cache key: change it whenever the data changes
        return self.key

    def video(self, i):  # (T, H, W, 3) uint8
        return self.clips[i]

    def targets(self, i):  # action indices into vocabulary.actions
        return [int(self.labels[i])]

    def groups(self, key=None):  # no group spans train and test: one group per clip
        return [f"clip-{i}" for i in range(len(self))]


@hookimpl
def benchkit_register(registry):
    registry.dataset("$short-flicker", Flicker)
'''

GRID = '''\
# The plugin's aggregator and dataset next to built-in ones, at smoke-test scale (CPU, seconds):
#   benchkit run grid.yaml
name: $short
dataset:
  - {name: $short-flicker, clips: 24}
  - {name: synthetic, videos: 8, windows_per_video: 2, frames: 4, size: 16, sprite: 3}
backbone: {name: random-vit, image_size: 16, patch: 4, dim: 16, depth: 1, heads: 2}
level: frame
aggregator: [mean, $short-maxmean]
predictor: {name: prefix-gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 64}
metrics: [accuracy]
protocol: {folds: 2, seed: 0}
train: {epochs: 4, batch_size: 4, lr: 1.0e-2}
'''

TEST = '''\
"""Tests of $dist, run after installing it: python -m pytest"""

from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from benchkit.cli import main
from benchkit.interfaces import Dataset, FeatureSpec
from benchkit.plugins import load_plugins

GRID = Path(__file__).resolve().parent.parent / "grid.yaml"


def test_registered_through_entry_points():
    registry = load_plugins()
    for kind, name in [("aggregator", "$short-maxmean"), ("dataset", "$short-flicker")]:
        assert registry.entries[kind][name].source.dist == "$dist"


def test_aggregator_output_shape():
    registry = load_plugins()
    resolved = registry.resolve("aggregator", "$short-maxmean", {"scale": 0.5})
    aggregator = registry.build("aggregator", resolved, FeatureSpec(level="patch", dim=8, frames=4, grid=(2, 2)))
    assert aggregator(torch.randn(3, 4, 4, 8)).shape == (3, aggregator.num_tokens, aggregator.out_dim)


def test_dataset_meets_the_interface():
    registry = load_plugins()
    dataset = registry.build("dataset", registry.resolve("dataset", "$short-flicker", {"clips": 6}))
    assert isinstance(dataset, Dataset) and len(dataset) == len(dataset.groups()) == 6
    assert dataset.video(0).shape == (4, 16, 16, 3) and dataset.video(0).dtype == np.uint8


def test_grid_runs_next_to_built_in_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["run", str(GRID), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "| $short-maxmean |" in result.stdout
'''

FILES: dict[str, str] = {
    "pyproject.toml": PYPROJECT,
    "$package/__init__.py": INIT,
    "$package/aggregator.py": AGGREGATOR,
    "$package/dataset.py": DATASET,
    "grid.yaml": GRID,
    "tests/test_plugin.py": TEST,
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*$")


def plugin_names(name: str) -> dict[str, str]:
    """NAME → ``dist`` (NAME), ``package`` (its import name) and ``short`` (the prefix of what it registers)."""
    if not _NAME.match(name):
        raise BenchkitError(f"plugin name {name!r}: use letters, digits and single '-' or '_' (e.g. benchkit-acme)")
    package = name.lower().replace("-", "_")
    short = re.sub(r"_plugins?$", "", re.sub(r"^benchkit_", "", package)).replace("_", "-")
    if keyword.iskeyword(package) or short in ("", "benchkit", "plugin", "plugins"):
        raise BenchkitError(f"plugin name {name!r} says nothing of its own; try benchkit-<what it adds>")
    return {"dist": name, "package": package, "short": short}


def plugin_files(name: str) -> dict[str, str]:
    """Relative path → text of every file of the package for NAME."""
    names = plugin_names(name)
    return {Template(path).substitute(names): Template(text).substitute(names) for path, text in FILES.items()}


def new_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write the package for NAME into ``parent/NAME``; refuses an existing folder or an importable package name."""
    files = plugin_files(name)
    package = plugin_names(name)["package"]
    if importlib.util.find_spec(package) is not None:
        raise BenchkitError(f"a module named {package!r} is already importable; choose another plugin name")
    root = Path(parent) / name
    if root.exists():
        raise BenchkitError(f"{root} already exists; choose another name or --dir")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
