"""One name, one owner: clashes between plugins and presets name both; only a preset that says so overrides."""

from __future__ import annotations

import types

import pytest

from benchkit.errors import PluginError
from benchkit.registry.hookspecs import hookimpl
from benchkit.registry.plugins import Registry, load_plugins


def plugin(name: str, register) -> types.ModuleType:
    module = types.ModuleType(name)
    module.benchkit_register = hookimpl(register)
    return module


def registry_file(tmp_path, text: str, name: str = "registry.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_preset_clashing_with_a_plugin_names_both_and_says_how_to_override(tmp_path):
    path = registry_file(tmp_path, "aggregator:\n  mean: {plugin: max}\n")
    reg = load_plugins(registry_files=[path])
    (failure,) = [f for f in reg.failures if f.plugin == "registry.yaml:aggregator.mean"]
    assert failure.error == (
        f"aggregator 'mean' is registered by both benchkit (aggregators.mean) and the preset from {path}; "
        "a preset takes a registered name only with override: true (YAML) or override=True (Python)"
    )
    assert reg.resolve("aggregator", "mean").entry.name == "mean"


def test_an_overriding_preset_shadows_the_plugin_of_its_name(tmp_path):
    path = registry_file(tmp_path, "aggregator:\n  mean: {plugin: max, description: max instead, override: true}\n")
    reg = load_plugins(registry_files=[path])
    assert not [f for f in reg.failures if "aggregator.mean" in f.plugin]
    resolved = reg.resolve("aggregator", "mean")
    assert resolved.entry.name == "max" and resolved.preset == "mean"
    assert reg.list("aggregator", "mean") == [("aggregator", "mean", "preset of max: max instead")]
    assert reg.names("aggregator").count("mean") == 1


def test_an_overriding_preset_replaces_a_preset_and_may_point_at_the_plugin_of_its_name(tmp_path):
    first = registry_file(tmp_path, "aggregator:\n  pool: {plugin: mean}\n", "first.yaml")
    second = registry_file(tmp_path, "aggregator:\n  pool: {plugin: gem, kwargs: {p: 2.0}, override: true}\n"
                                     "  gem: {plugin: gem, kwargs: {p: 4.0}, override: true}\n", "second.yaml")
    reg = load_plugins(registry_files=[first, second])
    assert reg.resolve("aggregator", "pool").kwargs == {"p": 2.0}
    assert reg.resolve("aggregator", "gem").kwargs == {"p": 4.0}  # new defaults for gem, under its own name
    assert reg.resolve("aggregator", "gem", {"p": 3.0}).kwargs == {"p": 3.0}


def test_two_overriding_presets_of_one_name_name_both(tmp_path):
    first = registry_file(tmp_path, "aggregator:\n  mean: {plugin: max, override: true}\n", "first.yaml")
    second = registry_file(tmp_path, "aggregator:\n  mean: {plugin: gem, override: true}\n", "second.yaml")
    reg = load_plugins(registry_files=[first, second])
    (failure,) = [f for f in reg.failures if f.plugin == "second.yaml:aggregator.mean"]
    assert f"the preset from {first} and the preset from {second}; both override it" in failure.error
    assert reg.resolve("aggregator", "mean").entry.name == "max"


def test_a_plugin_preset_overrides_whatever_the_order():
    def preset_first(registry):
        registry.preset("aggregator", "twin", "mean", "the mean, as twin", override=True)

    def entry_after(registry):
        registry.aggregator("twin", object)

    reg = load_plugins(extra=[plugin("presets_first", preset_first), plugin("entry_after", entry_after)],
                       registry_files=[])
    assert not [f for f in reg.failures if f.plugin in ("presets_first", "entry_after")]
    assert reg.resolve("aggregator", "twin").entry.name == "mean"
    assert reg.presets["aggregator"]["twin"].origin == "<in-process> (presets_first)"


def test_a_plugin_preset_without_override_fails_its_plugin_naming_both():
    def clashing(registry):
        registry.aggregator("fine", object)
        registry.preset("aggregator", "mean", "max")

    reg = load_plugins(extra=[plugin("clashing", clashing)], registry_files=[])
    (failure,) = [f for f in reg.failures if f.plugin == "clashing"]
    assert "registered by both benchkit (aggregators.mean) and the preset from <in-process> (clashing)" in failure.error
    assert "fine" not in reg.entries["aggregator"]  # the whole plugin is rolled back


def test_two_plugins_registering_one_name_fail_the_second_naming_both():
    reg = Registry()
    reg.add("aggregator", "twin", object)
    with pytest.raises(PluginError, match=r"aggregator 'twin' is registered by both <direct> \(<direct>\) and"):
        reg.add("aggregator", "twin", object)


MALFORMED = [
    "{plugin: max, overide: true}", "{plugin: max, override: 'yes'}", "{kwargs: {}}", "{plugin: max, kwargs: 1}", "max"
]


@pytest.mark.parametrize("spec", MALFORMED)
def test_malformed_registry_presets_are_reported(tmp_path, spec):
    reg = load_plugins(registry_files=[registry_file(tmp_path, f"aggregator:\n  odd: {spec}\n")])
    (failure,) = [f for f in reg.failures if f.plugin == "registry.yaml:aggregator.odd"]
    assert "needs plugin, may have kwargs (a mapping), description, override (true or false)" in failure.error
    assert "odd" not in reg.presets["aggregator"]
