"""Property-based: ``benchkit validate`` never crashes on any grid: exit 0, or exit 2 with one ``error:`` line."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


# -- structure-level mutations of the real grids ------------------------------------------------------------------
# Deleted, duplicated (sometimes as the same object, which the dumper writes as an anchor and alias), re-typed,
# re-nested, renamed and moved keys of every grid in benchmarks/*.yaml, then `benchkit validate`. The example count
# comes from BENCHKIT_FUZZ_EXAMPLES (default 40), e.g. BENCHKIT_FUZZ_EXAMPLES=10000 for a long run.

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.yaml"))
GRIDS = {path.name: yaml.safe_load(path.read_text()) for path in BENCHMARKS}


def _keys(tree, found: set) -> set:
    if isinstance(tree, dict):
        found.update(k for k in tree if isinstance(k, str))
        for v in tree.values():
            _keys(v, found)
    elif isinstance(tree, list):
        for v in tree:
            _keys(v, found)
    return found


VOCAB = sorted(_keys(list(GRIDS.values()), set()) | {"<<", "", "kwargs", "label", "name", "x", "1"})
OPS = ["delete", "duplicate", "alias", "retype", "renest", "wrap", "rename", "move", "swap"]


def _nodes(tree, path=()) -> list[tuple]:
    """Paths of every node below the root: dict keys and list indices."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        out.append((*path, key))
        out += _nodes(value, (*path, key))
    return out


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _contains(tree, target) -> bool:
    """Whether ``target`` is ``tree`` or inside it (by identity): moving ``tree`` there would make a cycle."""
    if tree is target:
        return True
    items = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    return any(_contains(v, target) for v in items)


def _retyped(value, choice: int, key: str):
    options = [None, True, 0, -1, 10**30, 1.5, float("nan"), "", "x", "*", "${NOPE}", [], {}, [value], {key: value},
               {"name": value}, str(value), [value, value],
               list(value) if isinstance(value, dict | list) else value, len(str(value))]
    return options[choice % len(options)]


@st.composite
def mutated_grids(draw):
    grid = json.loads(json.dumps(GRIDS[draw(st.sampled_from(sorted(GRIDS)))]))
    for _ in range(draw(st.integers(1, 4))):
        paths = _nodes(grid)
        if not paths:
            break
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent, last = _get(grid, path[:-1]), path[-1]
        node = parent[last]
        op = draw(st.sampled_from(OPS))
        containers = [p for p in [(), *paths] if isinstance(_get(grid, p), dict | list)]
        target = _get(grid, containers[draw(st.integers(0, len(containers) - 1))])
        new_key = draw(st.sampled_from(VOCAB))
        if op == "delete":
            del parent[last]
        elif op == "duplicate" or (op == "alias" and not _contains(node, target)):
            value = node if op == "alias" else json.loads(json.dumps(node))  # alias: an anchor and *alias in YAML
            if isinstance(target, dict):
                target[new_key] = value
            else:
                target.append(value)
        elif op == "retype":
            parent[last] = _retyped(node, draw(st.integers(0, 30)), new_key)
        elif op == "wrap":
            parent[last] = {last if isinstance(last, str) else new_key: node}
        elif op == "rename" and isinstance(parent, dict):
            parent[new_key] = parent.pop(last)
        elif op in ("renest", "move") and not _contains(node, target):
            del parent[last]
            if isinstance(target, dict):
                target[last if op == "move" and isinstance(last, str) else new_key] = node
            else:
                target.insert(draw(st.integers(0, len(target))), node)
        elif op == "swap":
            other = paths[draw(st.integers(0, len(paths) - 1))]
            other_parent, other_node = _get(grid, other[:-1]), _get(grid, other)
            if not _contains(node, other_parent) and not _contains(other_node, parent):
                parent[last], other_parent[other[-1]] = other_node, node
    return grid, draw(st.sampled_from([None, True, False]))


FUZZ = settings(max_examples=int(os.environ.get("BENCHKIT_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(case=mutated_grids())
def test_mutated_benchmark_grids(tmp_path, case):
    grid, flow = case
    _validate(tmp_path, yaml.safe_dump(grid, allow_unicode=True, sort_keys=False, default_flow_style=flow))
