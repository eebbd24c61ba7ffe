"""``benchkit.api`` is all a plugin imports: first-party plugins, the example packages and the template import
nothing else from benchkit; importing it is cheap; every name it lists resolves; one device resolver."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import benchkit.api as api
from benchkit.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
PLUGIN_SOURCES = sorted(
    [*REPO.glob("plugins/benchkit_*/**/*.py"), *REPO.glob("docs/examples/**/*.py"),
     *REPO.glob("benchkit/templates/**/*.py")]
)


def benchkit_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ``benchkit`` or one of its modules, at any depth of the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "benchkit"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "benchkit":
            found.append((node.lineno, node.module))
    return found


def test_plugins_import_only_the_api():
    assert len(PLUGIN_SOURCES) > 60
    wrong = [f"{path.relative_to(REPO)}:{line}: {module}" for path in PLUGIN_SOURCES
             for line, module in benchkit_imports(path) if module != "benchkit.api"]
    assert not wrong, "plugins import benchkit only through benchkit.api:\n" + "\n".join(wrong)


def test_the_api_is_cheap_to_import():
    code = ("import json, sys, benchkit.api; "
            "print(json.dumps([m for m in ('torch', 'numpy', 'pydantic', 'transformers') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_public_name_resolves():
    missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert not missing
    assert set(api.__all__) <= set(dir(api))
    assert api.cli.name == "main" and api.load_plugins.__module__ == "benchkit.registry.plugins"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        api.nope  # noqa: B018


def test_protocols_describe_what_the_core_probes():
    import torch

    class Slots(torch.nn.Module):
        num_tokens, out_dim = 1, 4

        def logits(self, prefix):
            return prefix

        def candidates(self, prefix, k):
            return [[[1]] * k]

    assert isinstance(Slots(), api.Aggregator) and isinstance(Slots(), api.LogitsPredictor)
    assert isinstance(Slots(), api.CandidatesPredictor) and not isinstance(Slots(), api.ReferencePredictor)
    assert isinstance(len, api.Metric)


@pytest.mark.parametrize("name", ["cuda:99", "no-such-device"])
def test_one_device_resolver_one_error(name):
    """Training, profiling and backbones resolve devices the same way and fail with the same line."""
    from benchkit_backbones._frozen import FrozenEncoder

    from benchkit.profiling.options import ProfileOptions

    expected = (r"is 'cuda:99' but (no CUDA device is available|only \d+ CUDA devices are visible)"
                if name.startswith("cuda") else r"'no-such-device' is not a device; use auto, cpu, cuda or cuda:N")
    with pytest.raises(ConfigError, match=rf"^train\.device {expected}"):
        api.resolve_device(name, "train.device")
    with pytest.raises(ConfigError, match=r"^profile\.device"):  # a malformed name fails when the options are made
        ProfileOptions(device=name).torch_device()
    if name.startswith("cuda"):
        with pytest.raises(ConfigError, match=rf"^profile\.device {expected}"):
            ProfileOptions(device=name).torch_device()
    with pytest.raises(ConfigError, match=rf"^backbone 'backbone': device {expected}"):
        FrozenEncoder(device=name, precision="auto", batch_size=None)
    assert api.resolve_device("cpu").type == "cpu" and api.resolve_device("auto").type in ("cpu", "cuda")


def test_no_other_device_resolver():
    """``torch.cuda.is_available()`` deciding a device lives only in ``benchkit/learn/devices.py``."""
    sources = [*REPO.glob("benchkit/**/*.py"), *REPO.glob("plugins/benchkit_*/**/*.py")]
    resolvers = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "device" in node.name:
                body = ast.unparse(node)
                if "cuda.is_available()" in body and "torch.device(" in body:
                    resolvers.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert resolvers == ["benchkit/learn/devices.py:18 resolve_device"]
