"""The first-party ``loggers.jsonl`` plugin: one JSON line per finished cell, through the end-of-cell hook."""

from __future__ import annotations

import json

import pytest
from benchkit_loggers import jsonl
from click.testing import CliRunner

from benchkit.cli import main
from benchkit.errors import StoreError

ONE_FOLD = {"mean": 50.0, "half_width": float("nan"), "n": 1}  # the half width over one fold is NaN
SUMMARY = {"labels": {"aggregator": "mean"}, "metrics": {"accuracy": ONE_FOLD}, "folds": 1}


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_loaded_through_its_entry_point(registry):
    registry.load_hook("benchkit_cell_finished")  # plugins load lazily: a hook's plugins when it is called
    assert registry.pm.get_plugin("loggers.jsonl") is jsonl
    assert not [f for f in registry.failures if f.plugin == "loggers.jsonl"]


def test_appends_one_strict_json_line_per_cell(tmp_path, monkeypatch):
    monkeypatch.delenv(jsonl.ENV, raising=False)
    for cell_id in ("aaa", "bbb"):
        jsonl.benchkit_cell_finished(cell={"id": cell_id, "level": "frame"}, summary=SUMMARY, run_dir=str(tmp_path))
    records = lines(tmp_path / "cells.jsonl")
    assert [r["cell"]["id"] for r in records] == ["aaa", "bbb"]
    assert records[0]["summary"]["metrics"]["accuracy"] == {"mean": 50.0, "half_width": None, "n": 1}
    assert records[0]["run_dir"] == str(tmp_path) and records[0]["time"]


def test_environment_variable_names_the_file(tmp_path, monkeypatch):
    target = tmp_path / "tracking" / "all-runs.jsonl"
    monkeypatch.setenv(jsonl.ENV, str(target))
    jsonl.benchkit_cell_finished(cell={"id": "aaa"}, summary=SUMMARY, run_dir=str(tmp_path / "run"))
    assert [r["cell"]["id"] for r in lines(target)] == ["aaa"] and not (tmp_path / "run").exists()


def test_unwritable_file_is_a_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv(jsonl.ENV, str(tmp_path))  # a folder
    with pytest.raises(StoreError, match=r"loggers.jsonl: cannot append to .*; set BENCHKIT_JSONL"):
        jsonl.benchkit_cell_finished(cell={"id": "aaa"}, summary=SUMMARY, run_dir=str(tmp_path))


def test_a_grid_logs_each_cell_it_finishes_once(tmp_path, write_grid, tiny_grid, monkeypatch):
    monkeypatch.delenv(jsonl.ENV, raising=False)
    grid, run_dir = write_grid(tiny_grid), tmp_path / "run"
    for _ in range(2):  # the second run resumes: nothing finishes, nothing is logged
        result = CliRunner().invoke(main, ["run", str(grid), "--run-dir", str(run_dir), "--no-progress"])
        assert result.exit_code == 0, result.output
    records = lines(run_dir / "cells.jsonl")
    assert sorted(r["cell"]["id"] for r in records) == sorted(p.name for p in (run_dir / "cells").iterdir())
    assert {r["summary"]["labels"]["level"] for r in records} == {"frame", "patch"}
    assert all(r["summary"]["folds"] == 2 and "accuracy" in r["summary"]["metrics"] for r in records)
