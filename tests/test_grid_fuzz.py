"""Property-based: ``benchkit validate`` never crashes on any grid: exit 0, or exit 2 with one ``error:`` line."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from conftest import TINY_GRID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchkit.cli import main

KEYS = [*TINY_GRID, "zip", "exclude", "sweep", "report", "executor", "retries", "fail_fast", "baselines", "seed",
        "cache_dir", "name", "kwargs", "label", "folds", "kind", "repeats", "epochs", "frames", "train_fraction"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["mean", "synthetic", "patch", "frame", "${HOME}", "${NOPE}", "*", "a=b"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)


def _validate(tmp_path, text: str) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def _mutate(grid: dict, path: list, value) -> dict:
    grid = json.loads(json.dumps(grid))
    node = grid
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node or not isinstance(node[key], dict):
            break
        node = node[key]
    if isinstance(node, dict):
        if value == "<delete>":
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return grid


paths = st.lists(st.sampled_from([*KEYS, "dataset", "backbone", "predictor", "protocol", "train"]), min_size=1,
                 max_size=3)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(path=paths, value=st.one_of(values, st.just("<delete>")))
def test_mutated_grids(tmp_path, path, value):
    _validate(tmp_path, yaml.safe_dump(_mutate(TINY_GRID, path, value), allow_unicode=True))


@SETTINGS
@given(tree=values)
def test_random_documents(tmp_path, tree):
    _validate(tmp_path, yaml.safe_dump(tree, allow_unicode=True))


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_text(tmp_path, text):
    _validate(tmp_path, text)


@SETTINGS
@given(cut=st.integers(0, 400), junk=st.sampled_from(["", ":", "- [", "{", "\t", "&a *b", "!!python/object:os.system"]))
def test_truncated_and_corrupted_yaml(tmp_path, cut, junk):
    text = yaml.safe_dump(TINY_GRID)
    _validate(tmp_path, text[:cut] + junk + text[cut:])
