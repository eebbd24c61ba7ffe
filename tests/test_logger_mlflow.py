"""The first-party ``loggers.mlflow`` plugin: a real grid logged to a SQLite MLflow store, read back with MLflow's own
client (one parent run per grid, one nested run per cell, params, per-fold metrics, artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchkit_loggers import mlflow_tracking
from click.testing import CliRunner

from benchkit.cli import main
from benchkit.errors import StoreError

mlflow = pytest.importorskip("mlflow")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_loaded_through_its_entry_point_and_inert_without_a_uri(registry, monkeypatch, tmp_path):
    assert "loggers.mlflow" in [p.plugin for p in registry.plugins]  # its module may load lazily, at the hook
    assert not [f for f in registry.failures if f.plugin == "loggers.mlflow"]
    monkeypatch.delenv(mlflow_tracking.ENV, raising=False)
    mlflow_tracking.benchkit_cell_finished(cell={"id": "aaa"}, summary={}, run_dir=str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()


def test_a_grid_is_one_parent_run_with_one_nested_run_per_cell(tmp_path, write_grid, tiny_grid, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}"
    (tmp_path / "tracking").mkdir()
    monkeypatch.setenv(mlflow_tracking.ENV, uri)
    monkeypatch.delenv(mlflow_tracking.ENV_EXPERIMENT, raising=False)
    grid, run_dir = write_grid(tiny_grid), tmp_path / "run"
    for _ in range(2):  # the second run resumes: nothing finishes, nothing new is logged
        result = invoke("run", grid, "--run-dir", run_dir, "--no-progress")
        assert result.exit_code == 0, result.output

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.artifact_location.startswith((tmp_path / "tracking" / "mlartifacts").as_uri())
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("benchkit.kind") == "grid"]
    children = [r for r in runs if r.data.tags.get("benchkit.kind") == "cell"]
    assert len(parents) == 1 and len(children) == 2 and len(runs) == 3
    parent = parents[0]
    assert parent.info.run_name == "tiny" and parent.data.tags["benchkit.run_dir"] == str(run_dir.resolve())
    assert parent.data.tags["env.torch"] == mlflow_tracking_torch_version()
    cells = {p.name for p in (run_dir / "cells").iterdir()}
    assert {c.data.tags["benchkit.cell"] for c in children} == cells
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.data.tags["label.level"] for c in children} == {"frame", "patch"}

    for child in children:
        cell_id = child.data.tags["benchkit.cell"]
        config = json.loads((run_dir / "cells" / cell_id / "cell.json").read_text())
        params = child.data.params
        assert params["level"] == config["level"] and params["aggregator.plugin"] == "mean"
        assert float(params["train.lr"]) == config["train"]["lr"] and params["protocol.folds"] == "2"
        folds = [json.loads((run_dir / "cells" / cell_id / f"fold-{k}.json").read_text()) for k in range(2)]
        history = client.get_metric_history(child.info.run_id, "accuracy")
        assert sorted((m.step, m.value) for m in history) == [(k, f["metrics"]["accuracy"]) for k, f in
                                                               enumerate(folds)]
        mean = sum(f["metrics"]["accuracy"] for f in folds) / 2
        assert child.data.metrics["accuracy_mean"] == pytest.approx(mean) and "accuracy_ci95" in child.data.metrics
        assert child.data.metrics["folds"] == 2 and child.data.metrics["failed_folds"] == 0
        assert len(client.get_metric_history(child.info.run_id, "train_seconds")) == 2
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "folds")}
        assert artifacts == {"folds/fold-0.json", "folds/fold-1.json", "folds/cell.json"}
        assert child.info.status == "FINISHED"

    logged = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert logged == {"leaderboard.md", "leaderboard.csv", "environment.json"}
    board = client.download_artifacts(parent.info.run_id, "leaderboard.md", str(tmp_path))
    assert Path(board).read_text() == (run_dir / "leaderboard.md").read_text()  # after the last cell: the final board


def mlflow_tracking_torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


def test_a_store_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "plan.json").write_text(json.dumps({"grid": "g"}))
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(mlflow_tracking.ENV, f"sqlite:///{blocker}/mlflow.db")  # a folder that is a file
    with pytest.raises(StoreError, match=r"^loggers.mlflow: cannot log to sqlite:///") as info:
        mlflow_tracking.benchkit_cell_finished(cell={"id": "aaa"}, summary={}, run_dir=str(run_dir))
    assert "\n" not in str(info.value)
