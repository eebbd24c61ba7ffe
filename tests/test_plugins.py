from __future__ import annotations

import subprocess
import sys
import types

import pytest

from benchkit.errors import DataError, PluginError
from benchkit.grid.config import parse_grid
from benchkit.grid.plan import plan
from benchkit.registry.hookspecs import hookimpl
from benchkit.registry.plugins import load_plugins


def test_first_party_plugins_register_through_entry_points(registry):
    assert not registry.failures, registry.failures
    for kind, name in [("dataset", "synthetic"), ("backbone", "random-vit"), ("aggregator", "mean"),
                       ("predictor", "prefix-gpt2"), ("metric", "accuracy")]:
        assert registry.entries[kind][name].source.dist == "benchkit"


def test_unknown_name_did_you_mean(tiny_grid, registry):
    tiny_grid["aggregator"] = "meen"
    with pytest.raises(PluginError, match=r"unknown aggregator 'meen'; did you mean 'mean'\?.*benchkit ls aggregator"):
        plan(parse_grid(tiny_grid), registry)


def test_bad_keyword_checked_against_signature(tiny_grid, registry):
    tiny_grid["backbone"]["dims"] = 3
    with pytest.raises(PluginError, match=r"backbone 'random-vit': unexpected keyword 'dims'; did you mean 'dim'"):
        plan(parse_grid(tiny_grid), registry)


def test_unsupported_level_is_a_validation_error(tiny_grid, registry):
    tiny_grid["aggregator"] = "frame-tokens"
    with pytest.raises(PluginError, match="does not support level 'patch'"):
        plan(parse_grid(tiny_grid), registry)


def test_missing_data_path(registry):
    reg = load_plugins(registry_files=[])

    def from_folder(root: str):
        raise AssertionError("not built during validation")

    reg.dataset("folder", from_folder, paths=("root",))
    resolved = reg.resolve("dataset", "folder", {"root": "/no/such/place"})
    from benchkit.grid.plan import check_paths

    with pytest.raises(DataError, match="root does not exist: /no/such/place"):
        check_paths(resolved)
    with pytest.raises(PluginError, match="missing required keyword 'root'"):
        reg.resolve("dataset", "folder", {})


def _plugin(name: str, register) -> types.ModuleType:
    module = types.ModuleType(name)
    module.benchkit_register = hookimpl(register)
    return module


def test_broken_register_is_recorded_and_rolled_back():
    def bad(registry):
        registry.aggregator("half-registered", object)
        registry.preset("aggregator", "half-preset", "mean")
        raise RuntimeError("boom")

    def good(registry):
        registry.aggregator("fine", object)

    reg = load_plugins(extra=[_plugin("bad_plugin", bad), _plugin("good_plugin", good)], registry_files=[])
    assert "fine" in reg.entries["aggregator"] and "mean" in reg.entries["aggregator"]
    assert "half-registered" not in reg.entries["aggregator"] and "half-preset" not in reg.presets["aggregator"]
    assert [f.plugin for f in reg.failures] == ["bad_plugin"] and "boom" in reg.failures[0].error


def test_name_clash_names_both():
    reg = load_plugins(extra=[_plugin("clashing", lambda registry: registry.aggregator("mean", object))],
                       registry_files=[])
    assert "registered by both benchkit" in reg.failures[0].error and "clashing" in reg.failures[0].error


def test_list_with_wildcards(registry):
    names = [name for _, name, _ in registry.list("predictor", "prefix-gpt2*")]
    assert names == ["prefix-gpt2", "prefix-gpt2-paper", "prefix-gpt2-reference-bimacs", "prefix-gpt2-reference-mugen",
                     "prefix-gpt2-tiny"]
    assert [n for _, n, _ in registry.list(None, "mea?")] == ["mean"]


def _dist_with_broken_entry_point(tmp_path):
    info = tmp_path / "brokenplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[benchkit]\nbroken = brokenplug_does_not_exist\n")
    return tmp_path


def _benchkit(*args, env_extra=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "benchkit.cli", *args], capture_output=True, text=True, env=env)


def test_broken_entry_point_does_not_stop_the_others(tmp_path):
    site = _dist_with_broken_entry_point(tmp_path)
    out = _benchkit("plugins", env_extra={"PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    assert "FAILED brokenplug  broken: ModuleNotFoundError" in out.stdout
    assert "aggregators.mean: aggregator:mean" in out.stdout


def test_disable_autoload_with_allow_list():
    out = _benchkit(
        "ls", env_extra={"BENCHKIT_DISABLE_PLUGIN_AUTOLOAD": "1", "BENCHKIT_PLUGINS": "aggregators.mean"}
    )
    assert out.returncode == 0, out.stderr
    names = {tuple(line.split()[:2]) for line in out.stdout.splitlines()}
    assert ("aggregator", "mean") in names
    assert ("aggregator", "frame-tokens") not in names and ("dataset", "synthetic") not in names
