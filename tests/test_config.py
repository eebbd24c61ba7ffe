from __future__ import annotations

import pytest

from benchkit.errors import ConfigError
from benchkit.grid.config import Component, apply_overrides, expand, load_grid, parse_grid, parse_selectors
from benchkit.grid.plan import plan


def test_component_forms():
    assert Component.model_validate("gem") == Component(name="gem")
    c = Component.model_validate({"name": "gem", "label": "GeM", "p": 3})
    assert (c.name, c.label, c.kwargs, c.display) == ("gem", "GeM", {"p": 3}, "GeM")


def test_unknown_key_is_one_line(tiny_grid):
    tiny_grid["train"]["epoch"] = 3
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key") as e:
        parse_grid(tiny_grid)
    assert "\n" not in str(e.value)


def test_wrong_type_names_the_value(tiny_grid):
    tiny_grid["train"]["epochs"] = "ten"
    with pytest.raises(ConfigError, match=r"train\.epochs: .*integer.*'ten'"):
        parse_grid(tiny_grid)


def test_missing_required_key(tiny_grid):
    del tiny_grid["predictor"]
    with pytest.raises(ConfigError, match="predictor: required key is missing"):
        parse_grid(tiny_grid)


def test_malformed_yaml_names_line(write_grid):
    path = write_grid("name: x\ndataset: [synthetic\n")
    with pytest.raises(ConfigError, match=r"grid\.yaml:\d+:\d+: invalid YAML"):
        load_grid(path)


def test_non_mapping_and_missing_file(write_grid, tmp_path):
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_grid(write_grid("- a\n- b\n"))
    with pytest.raises(ConfigError, match="grid file not found"):
        load_grid(tmp_path / "nope.yaml")


def test_overrides(tiny_grid):
    raw = apply_overrides(tiny_grid, ["train.epochs=3", "aggregator=[mean, frame-tokens]", "report.decimals=1"])
    grid = parse_grid(raw)
    assert grid.train.epochs == 3 and grid.report.decimals == 1
    assert [a.name for a in grid.axis("aggregator")] == ["mean", "frame-tokens"]
    assert tiny_grid["train"]["epochs"] == 2  # the input is not modified
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        apply_overrides(tiny_grid, ["train.epochs"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides(tiny_grid, ["name.x=1"])


def test_env_expansion(tiny_grid, monkeypatch):
    monkeypatch.setenv("TINY_NAME", "from-env")
    tiny_grid["name"] = "${TINY_NAME}"
    tiny_grid["description"] = "${UNSET_BENCHKIT_VAR:-fallback}"
    grid = parse_grid(tiny_grid)
    assert (grid.name, grid.description) == ("from-env", "fallback")
    tiny_grid["description"] = "${UNSET_BENCHKIT_VAR}"
    with pytest.raises(ConfigError, match=r"UNSET_BENCHKIT_VAR is not set .*description"):
        parse_grid(tiny_grid)


def test_product_zip_exclude_only(tiny_grid):
    tiny_grid["aggregator"] = ["mean", "frame-tokens"]
    grid = parse_grid(tiny_grid)
    assert len(expand(grid)) == 4
    tiny_grid["exclude"] = [{"level": "patch", "aggregator": "frame-*"}]
    assert len(expand(parse_grid(tiny_grid))) == 3
    tiny_grid["zip"] = [["level", "aggregator"]]
    tiny_grid["exclude"] = []
    cells = expand(parse_grid(tiny_grid))
    assert [(c.level, c.aggregator.name) for c in cells] == [("frame", "mean"), ("patch", "frame-tokens")]
    only = parse_selectors(["aggregator=mean"])
    assert [c.aggregator.name for c in expand(parse_grid(tiny_grid), only)] == ["mean"]
    with pytest.raises(ConfigError, match="expected AXIS=PATTERN"):
        parse_selectors(["colour=red"])


def test_zip_lengths_must_match(tiny_grid):
    tiny_grid["zip"] = [["level", "aggregator"]]
    with pytest.raises(ConfigError, match="different lengths"):
        expand(parse_grid(tiny_grid))


def test_cell_ids_stable_and_sensitive(tiny_grid, registry):
    ids = [p.id for p in plan(parse_grid(tiny_grid), registry)]
    assert ids == [p.id for p in plan(parse_grid(tiny_grid), registry)]
    assert len(set(ids)) == 2
    tiny_grid["aggregator"] = [{"name": "mean", "label": "Mean pooling"}]  # labels are cosmetic
    assert [p.id for p in plan(parse_grid(tiny_grid), registry)] == ids
    tiny_grid["train"]["lr"] = 2e-3
    assert not set(ids) & {p.id for p in plan(parse_grid(tiny_grid), registry)}


def test_preset_and_plugin_with_same_kwargs_share_an_id(tiny_grid, registry):
    tiny_grid["predictor"] = "prefix-gpt2-tiny"
    a = plan(parse_grid(tiny_grid), registry)[0]
    assert a.predictor.preset == "prefix-gpt2-tiny" and a.predictor.kwargs["n_embd"] == 64
