"""The same tiny grid through the local, process and ray executors gives identical results, hyper-parameter
selection included (a GeM cell selects its exponent and learning rate on validation folds)."""

from __future__ import annotations

import json

import pytest

from benchkit.errors import PluginError
from benchkit.grid.config import parse_grid
from benchkit.run.runner import build_executor, run_grid


def _metrics(run_dir):
    out = {}
    for path in sorted(run_dir.glob("cells/*/fold-*[0-9].json")):
        record = json.loads(path.read_text())
        out[(record["cell"], record["fold"])] = record["metrics"]
    return out


def _selections(run_dir):
    out = {}
    for path in sorted(run_dir.glob("cells/*/fold-*[0-9].json")):
        record = json.loads(path.read_text())
        if "selection" in record:
            sel = record["selection"]
            out[(record["cell"], record["fold"])] = (sel["values"], [c["validation"] for c in sel["candidates"]])
    return out


def _predictions(run_dir):
    return {str(p.relative_to(run_dir)): json.loads(p.read_text())["predictions"]
            for p in sorted(run_dir.glob("cells/*/fold-*.predictions.json"))}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, registry):
    from conftest import TINY_GRID

    raw = json.loads(json.dumps(TINY_GRID))
    raw["aggregator"] = ["mean", {"name": "gem", "p": {"select": [2.0, 3.0]}}]
    raw["train"]["lr"] = {"select": [1.0e-3, 3.0e-3]}
    grid = parse_grid(raw)
    run_dir = tmp_path_factory.mktemp("local") / "run"
    summary = run_grid(grid, run_dir, registry, say=lambda m: None, progress=False)
    return grid, run_dir, summary


@pytest.mark.parametrize("executor", [{"name": "process", "workers": 2, "threads": 1},
                                      {"name": "ray", "local_cpus": 2}])
def test_executors_give_the_local_leaderboard(executor, local_run, tmp_path, registry):
    grid, local_dir, local_summary = local_run
    raw = {**grid.model_dump(mode="json"), "executor": executor}
    run_dir = tmp_path / "run"
    summary = run_grid(parse_grid(raw), run_dir, registry, raw_grid=raw, say=lambda m: None, progress=False)
    assert not summary.failed and summary.folds_run == local_summary.folds_run
    assert _predictions(run_dir) == _predictions(local_dir)
    assert _metrics(run_dir) == _metrics(local_dir)
    assert _selections(run_dir) == _selections(local_dir) and len(_selections(local_dir)) == 8
    assert summary.leaderboard == local_summary.leaderboard
    assert all("host" in json.loads(p.read_text()) for p in run_dir.glob("cells/*/fold-*[0-9].json"))


def test_unknown_executor_and_bad_keyword_are_one_line(tiny_grid, registry):
    with pytest.raises(PluginError, match="unknown executor 'procss'; did you mean 'process'"):
        build_executor(registry, parse_grid({**tiny_grid, "executor": "procss"}))
    with pytest.raises(PluginError, match="unexpected keyword 'worker'; did you mean 'workers'"):
        build_executor(registry, parse_grid({**tiny_grid, "executor": {"name": "process", "worker": 2}}))
