"""The tidy results frame (``benchkit.load_results``), the environment a leaderboard names, and leaderboards merged
from several run directories (``benchkit report RUN_A RUN_B``), on synthetic run directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_runs import ACCURACY, ERROR, cell, write_run

import benchkit
from benchkit.cli import main
from benchkit.errors import BenchkitError
from benchkit.report.leaderboard import collect, render
from benchkit.report.results import load_results as load_run

ENV = {"benchkit": "0.1.0", "packages": {"torch": "2.4.1", "transformers": "4.44.2", "timm": "1.0.9"},
       "device": "cuda:0", "device_name": "NVIDIA H200"}
CONFIG = {"task": "actions", "level": "patch", "train": {"lr": 0.001, "epochs": 2}, "seed": 0}


def stamp(run: Path, env: dict | None = ENV, config: dict | None = None, **fold_fields) -> Path:
    """What ``benchkit run`` adds to a synthetic run: environment.json, the configuration in cell.json, fold fields."""
    if env is not None:
        (run / "environment.json").write_text(json.dumps(env))
    for path in sorted(run.glob("cells/*/cell.json")):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, **(config or CONFIG)}))
    for path in sorted(run.glob("*/*/fold-*.json")):
        if path.name.count(".") == 1:
            record = json.loads(path.read_text())
            k = record["fold"]
            path.write_text(json.dumps({**record, "seed": k, "train_seconds": 1.5 + k, "eval_seconds": 0.25,
                                        "device": (env or {}).get("device", "cpu"), **fold_fields}))
    return run


def two_metric_run(root: Path) -> Path:
    return stamp(write_run(root, [
        cell("aaa", {"accuracy": [80, 81, 82], "error": [1.0, 2.0, 3.0]}, aggregator="Mean",
             profile={"gflops": 2.0}),
        cell("bbb", {"accuracy": [70, None, None], "error": [5.0, None, None]}, aggregator="LSTM", failed=[1],
             train_fraction=0.5),
    ], metrics=(ACCURACY, ERROR)))


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# -- the frame -----------------------------------------------------------------------------------------------------


def test_frame_has_one_row_per_cell_fold_metric_baselines_marked(tmp_path):
    frame = benchkit.load_results(two_metric_run(tmp_path / "run"))
    assert len(frame) == (2 + 2) * 3 * 2  # (2 cells + random + majority) x 3 folds x 2 metrics
    key = ["cell", "fold", "metric"]
    assert not frame.duplicated(key).any()
    for column in ["run", "baseline", "dataset", "backbone", "level", "aggregator", "predictor", "train_fraction",
                   "fold", "status", "seed", "value", "higher_is_better", "train_seconds", "eval_seconds",
                   "env.torch", "env.timm", "env.device", "gflops", "config.train.lr", "config.seed"]:
        assert column in frame.columns, column
    assert frame.attrs["labels"][:5] == ["dataset", "backbone", "level", "aggregator", "predictor"]
    assert set(frame["run"]) == {"run"}

    mean = frame[(frame.cell == "aaa") & (frame.metric == "accuracy")]
    assert list(mean.value) == [80, 81, 82] and list(mean.seed) == [0, 1, 2] and list(mean.train_seconds) == [
        1.5, 2.5, 3.5]
    assert set(mean["env.device"]) == {"cuda:0 (NVIDIA H200)"} and set(mean["env.torch"]) == {"2.4.1"}
    assert set(mean["config.train.lr"]) == {0.001} and set(mean.gflops) == {2.0}
    lstm = frame[(frame.cell == "bbb") & (frame.metric == "error")]
    assert list(lstm.status) == ["stored", "failed", "pending"] and lstm.value.isna().tolist() == [False, True, True]
    assert set(lstm.train_fraction) == {0.5}  # numbers stay numbers
    assert frame[frame.metric == "error"].higher_is_better.eq(False).all()

    baselines = frame[frame.baseline]
    assert set(baselines.aggregator) == {"Random", "Majority"} and baselines["config.seed"].isna().all()
    assert baselines.gflops.isna().all()
    by_hand = frame[(frame.status == "stored") & ~frame.baseline].groupby("aggregator").value.count()
    assert by_hand.to_dict() == {"LSTM": 2, "Mean": 6}


def test_import_benchkit_stays_light():
    code = ("import sys, benchkit; assert 'pandas' not in sys.modules and 'torch' not in sys.modules; "
            "f = benchkit.load_results; assert f.__module__ == 'benchkit.report.frame'; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- environment ---------------------------------------------------------------------------------------------------

NOTE = "Environment: torch 2.4.1, transformers 4.44.2, timm 1.0.9; device cuda:0 (NVIDIA H200)."


def test_leaderboard_names_versions_and_device(tmp_path):
    run = two_metric_run(tmp_path / "run")
    table = collect(load_run(run))
    md, latex, html = render(table, "md"), render(table, "latex"), render(table, "html")
    assert md.endswith(f"\n\n{NOTE}\n") and latex.endswith(f"\\end{{tabular}}\n\n% {NOTE}\n")
    assert f'<p class="meta environment">{NOTE}</p>' in html
    assert "timm" not in render(table, "csv")

    bare = write_run(tmp_path / "bare", [cell("a", {"accuracy": [1, 2, 3]})])  # no environment recorded
    assert "Environment" not in render(collect(load_run(bare)), "md")

    older = {**ENV, "packages": {"torch": "2.4.1", "transformers": None}, "device": "cpu", "device_name": "x86_64"}
    (run / "environment.json").write_text(json.dumps(older))
    for path in run.glob("cells/*/fold-*.json"):
        if path.name.count(".") == 1:
            path.write_text(json.dumps({**json.loads(path.read_text()), "device": "cpu"}))
    assert render(collect(load_run(run)), "md").endswith(
        "Environment: torch 2.4.1, transformers not installed, timm not recorded; device cpu (x86_64).\n")


def test_folds_from_different_versions_are_flagged(tmp_path):
    run = two_metric_run(tmp_path / "run")
    fold = run / "cells" / "aaa" / "fold-2.json"  # resumed under another torch, on the CPU
    fold.write_text(json.dumps({**json.loads(fold.read_text()), "device": "cpu",
                                "environment": {"packages": {"torch": "2.5.0"}}}))
    note = render(collect(load_run(run)), "md").splitlines()[-1]
    assert note == ("Environment: torch 2.4.1 (3 folds) / 2.5.0 (1 folds), transformers 4.44.2, timm 1.0.9; "
                    "device cuda:0 (NVIDIA H200) (3 folds) / cpu (1 folds). The folds come from different "
                    "environments (torch, device): compare with care.")


# -- merged runs ---------------------------------------------------------------------------------------------------


def split_grid(tmp_path, env_b=ENV):
    """One grid split by --only across two machines: each run directory has half the cells (and the baselines)."""
    a = stamp(write_run(tmp_path / "machine-a", [
        cell("c1", {"accuracy": [50, 52, 54]}, backbone="DINOv2", aggregator="Mean"),
        cell("c2", {"accuracy": [90, 91, 92]}, backbone="DINOv2", aggregator="InvPatch"),
    ]))
    b = stamp(write_run(tmp_path / "machine-b", [
        cell("c3", {"accuracy": [70, 72, 74]}, backbone="VideoMAE", aggregator="Mean"),
        cell("c4", {"accuracy": [95, 96, 97]}, backbone="VideoMAE", aggregator="InvPatch"),
    ]), env=env_b)
    return a, b


def test_merged_leaderboard_says_which_run_each_row_came_from(tmp_path):
    a, b = split_grid(tmp_path)
    code, md, err = invoke("report", a, b)
    assert code == 0, err
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| ")]
    assert rows[0] == ["Level", "Aggregator", "Backbone", "Run", "accuracy ↑"]
    assert [(r[1], r[3]) for r in rows[1:]] == [
        ("Mean", "machine-a"), ("InvPatch", "machine-a"), ("Mean", "machine-b"), ("InvPatch", "machine-b"),
        ("Random", "machine-a"), ("Majority", "machine-a")]  # the baselines of the shared dataset once
    assert "<ins>**96.00 ± 2.48**</ins>" in md and md.endswith(f"{NOTE}\n")  # marks across the runs
    frame = benchkit.load_results([a, b])
    assert set(frame.run) == {"machine-a", "machine-b"} and frame.attrs["runs"] == [str(a), str(b)]

    code, _, err = invoke("report", a, b, "--format", "all")
    assert code == 2 and err == "error: several run directories: give --out DIR for the report's files\n"
    code, _, err = invoke("report", a, b, "--format", "html", "-o", tmp_path / "merged.html")
    assert code == 0, err
    page = (tmp_path / "merged.html").read_text()
    assert "2 run directories merged" in page and "machine-b (" in page


def test_merged_folds_from_different_versions_are_flagged(tmp_path):
    a, b = split_grid(tmp_path, env_b={**ENV, "packages": {**ENV["packages"], "timm": "1.0.11"}})
    note = render(collect(load_run([a, b])), "md").splitlines()[-1]
    assert "timm 1.0.9 (6 folds) / 1.0.11 (6 folds)" in note and "different environments (timm)" in note


def test_a_cell_in_two_runs_gets_the_union_of_its_folds(tmp_path):
    a = stamp(write_run(tmp_path / "a", [cell("c1", {"accuracy": [50, 52, None]}, aggregator="Mean")]))
    b = stamp(write_run(tmp_path / "b", [cell("c1", {"accuracy": [None, None, 54]}, aggregator="Mean"),
                                         cell("c9", {"accuracy": [10, 11, 12]}, aggregator="Other")],
                        metrics=(ACCURACY, ERROR), grid="other"))
    table = collect(load_run([a, b]))
    assert table.title == "demo + other" and [m["name"] for m in table.metrics] == ["accuracy", "error"]
    row = table.rows[0]
    assert row.folds == 3 and row.labels["run"] == "a+b" and row.metrics["accuracy"].mean == 52
    frame = benchkit.load_results(a, b)
    assert frame[(frame.cell == "c1") & (frame.metric == "accuracy")].run.tolist() == ["a", "a", "b"]


@pytest.mark.parametrize("change, message", [
    ({"config": {**CONFIG, "train": {"lr": 0.01, "epochs": 2}}},
     "cannot merge cell c1: a and b resolve it to different configurations (train.lr: 0.001 vs 0.01)"),
    ({"env": {**ENV, "packages": {**ENV["packages"], "torch": "2.5.0"}}},
     "cannot merge cell c1: a ran it with torch 2.4.1, transformers 4.44.2, timm 1.0.9 on cuda:0 (NVIDIA H200), "
     "b with torch 2.5.0, transformers 4.44.2, timm 1.0.9 on cuda:0 (NVIDIA H200)"),
    ({"folds": 5}, "cannot merge a (3 folds of group_kfold, seed 0) and b (5 folds of group_kfold, seed 0)"),
])
def test_merge_refuses_what_cannot_be_one_table(tmp_path, change, message):
    a = stamp(write_run(tmp_path / "a", [cell("c1", {"accuracy": [50, 52, None]})]))
    folds = change.get("folds", 3)
    b = stamp(write_run(tmp_path / "b", [cell("c1", {"accuracy": [None] * (folds - 1) + [54]})], folds=folds),
              env=change.get("env", ENV), config=change.get("config"))
    with pytest.raises(BenchkitError, match="cannot merge"):
        load_run([a, b])
    code, out, err = invoke("report", a, b)
    assert code == 2 and out == "" and err.startswith(f"error: {message}") and err.count("\n") == 1, err
