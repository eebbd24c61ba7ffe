"""Nothing heavy at start-up: names come from the plugin manifest (``benchkit.registry.manifest``), a plugin is
imported when one of its names is built or checked. ``--help``, ``ls`` and ``schema`` import neither torch nor
transformers; ``validate`` imports only the plugins its grid names; a plugin edited, broken or
reinstalled is noticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import TINY_GRID

HEAVY = ("torch", "transformers")
# Runs the CLI in a fresh interpreter, then writes the names of the modules it imported.
RUN = """
import json, os, sys
from benchkit.cli import main
try:
    main(sys.argv[1:], prog_name="benchkit")
finally:
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump(sorted(sys.modules), f)
"""


@pytest.fixture
def cli(tmp_path):
    """``cli(*args, env=...)`` → (completed process, modules it imported), with a cache (and manifest) of its own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BENCHKIT_DISABLE", "BENCHKIT_PLUGINS"))}
    base.update(BENCHKIT_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")

    def run(*args: str, env: dict[str, str] | None = None):
        out_file = tmp_path / "modules.json"
        environ = {**base, **(env or {}), "MODULES_OUT": str(out_file)}
        out = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=environ,
                             cwd=tmp_path, timeout=600)
        return out, set(json.loads(out_file.read_text()))

    return run


def test_help_ls_and_schema_import_neither_torch_nor_a_plugin(cli):
    first, _ = cli("ls")  # the first run in an environment imports every plugin and records the manifest
    assert first.returncode == 0, first.stderr
    for args in (["--help"], ["ls"], ["ls", "aggregator", "gem*"], ["schema"]):
        out, modules = cli(*args)
        assert out.returncode == 0, out.stderr
        assert not [m for m in HEAVY if m in modules], args
        assert not [m for m in modules if m.startswith("benchkit_")], args
    out, _ = cli("ls")
    assert out.stdout == first.stdout  # the same listing, from the manifest
    plain, _ = cli("ls", env={"BENCHKIT_PLUGIN_MANIFEST": "0"})
    assert plain.stdout == first.stdout


def test_validate_imports_only_the_plugins_its_grid_names(cli, tmp_path):
    cli("ls")
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(TINY_GRID))
    out, modules = cli("validate", str(grid))
    assert out.returncode == 0, out.stderr
    from benchkit.registry.manifest import read_entry_points

    imported = {ep.name for ep in read_entry_points() if ep.module in modules}
    assert imported == {"datasets.synthetic", "backbones.random-vit", "aggregators.mean", "predictors.prefix-gpt2",
                        "metrics.accuracy", "executors.local"}
    assert "transformers" not in modules


def _dist(site: Path, dist: str, module: str, source: str) -> None:
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[benchkit]\n{dist}.agg = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


POOL = """
    import os

    from benchkit.api import hookimpl

    if os.environ.get("LAZYPLUG_FAIL"):
        raise RuntimeError("boom")


    class Pool:
        \"\"\"{doc}\"\"\"

        def __init__(self, spec, k: int = 1):
            self.num_tokens, self.out_dim = k, spec.dim


    @hookimpl
    def benchkit_register(registry):
        registry.aggregator("{name}", Pool)
"""


def test_a_recorded_plugin_that_no_longer_imports_fails_when_needed(cli, tmp_path):
    site = tmp_path / "site"
    _dist(site, "lazyplug", "lazyplug_agg", POOL.format(doc="A lazy pool.", name="lazy-pool"))
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)}
    out, _ = cli("ls", "aggregator", "lazy-*", env=env)
    assert out.stdout == "aggregator lazy-pool  A lazy pool. [lazyplug]\n", out.stderr
    env["LAZYPLUG_FAIL"] = "1"  # the recorded names stay listed; importing the plugin now fails
    out, modules = cli("ls", "aggregator", "lazy-*", env=env)
    assert out.stdout == "aggregator lazy-pool  A lazy pool. [lazyplug]\n" and "lazyplug_agg" not in modules
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({**TINY_GRID, "aggregator": "lazy-pool"}))
    out, _ = cli("validate", str(grid), env=env)
    assert out.returncode == 2
    assert out.stderr == "error: plugin lazyplug.agg (lazyplug) failed to load: RuntimeError: boom\n"
    out, _ = cli("plugins", env=env)
    assert "FAILED lazyplug  lazyplug.agg: RuntimeError: boom" in out.stdout.splitlines()


def test_an_edited_plugin_is_read_again(cli, tmp_path):
    site = tmp_path / "site"
    _dist(site, "editplug", "editplug_agg", POOL.format(doc="Before.", name="edit-before"))
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)}
    assert cli("ls", "aggregator", "edit-*", env=env)[0].stdout == "aggregator edit-before  Before. [editplug]\n"
    (site / "editplug_agg.py").write_text(textwrap.dedent(POOL.format(doc="After, longer.", name="edit-after")))
    out, modules = cli("ls", "aggregator", "edit-*", env=env)
    assert out.stdout == "aggregator edit-after  After, longer. [editplug]\n" and "editplug_agg" in modules


def test_registrations_that_are_not_plain_data_are_imported_each_time(tmp_path, monkeypatch):
    """A plugin whose registration metadata holds an object cannot be recorded; it still loads, at start-up."""
    import pluggy

    from benchkit.registry import hookspecs
    from benchkit.registry.manifest import EntryPoint, Manifest
    from benchkit.registry.plugins import Registry, Source

    (tmp_path / "objplug_agg.py").write_text("def benchkit_register(registry):\n"
                                             "    registry.aggregator('obj', object, hook=object())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path / "cache"))
    registry, ep = Registry(), EntryPoint("obj", "objplug_agg", "objplug", "0.1")
    registry.pm = pluggy.PluginManager(hookspecs.PROJECT)
    registry._manifest = manifest = Manifest.open()
    registry._add_module(Source("obj", "objplug", "0.1"), ep.load, ep)
    assert registry.entries["aggregator"]["obj"].factory is object and registry.plugins
    assert manifest.record(ep) is None and not manifest.plugins
    monkeypatch.delitem(sys.modules, "objplug_agg")


def test_a_record_round_trips_tuples_and_refuses_objects():
    from benchkit.registry.manifest import Uncacheable, decode, encode

    meta = {"levels": ("frame", "patch"), "paths": ("root",), "n": [1, 2.5, None, True], "d": {"k": ("x",)}}
    assert decode(json.loads(json.dumps(encode(meta)))) == meta
    for value in (object(), {1: "x"}, {"a": {1, 2}}):
        with pytest.raises(Uncacheable):
            encode(value)
