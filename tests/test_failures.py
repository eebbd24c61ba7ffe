"""A failing fold is recorded and the grid goes on; retries, fail-fast, exit codes; kill -9 at random moments."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import types

import pytest
import torch
from click.testing import CliRunner

from benchkit.cli import main
from benchkit.errors import DataError
from benchkit.grid.config import parse_grid
from benchkit.registry.hookspecs import hookimpl
from benchkit.registry.plugins import load_plugins
from benchkit.run.runner import run_grid

ATTEMPTS: dict[str, int] = {}


class Flaky(torch.nn.Module):
    """Mean pooling that returns NaN for its first ``fail_times`` constructions (a NaN loss in training)."""

    num_tokens = 1

    def __init__(self, spec, fail_times: int = 10**9, key: str = "flaky"):
        super().__init__()
        self.out_dim = spec.dim
        ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
        self.nan = ATTEMPTS[key] <= fail_times
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        out = self.w * x.flatten(1, -2).mean(dim=1, keepdim=True)
        return out * float("nan") if self.nan else out


def _registry():
    module = types.ModuleType("flaky_plugin")
    module.benchkit_register = hookimpl(lambda registry: registry.aggregator("flaky", Flaky))
    return load_plugins(extra=[module])


@pytest.fixture
def grid(tiny_grid):
    tiny_grid.update(level="frame", aggregator=["mean", "flaky"], baselines=[])
    return tiny_grid


def test_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, grid):
    ATTEMPTS.clear()
    messages = []
    summary = run_grid(parse_grid(grid), tmp_path / "run", _registry(), say=messages.append, progress=False)
    assert len(summary.failed) == 2 and {f["labels"]["aggregator"] for f in summary.failed} == {"flaky"}
    assert all(f["type"] == "FloatingPointError" and "non-finite" in f["message"] for f in summary.failed)
    cells = {c["labels"]["aggregator"]: c["id"] for c in json.loads((tmp_path / "run/plan.json").read_text())["cells"]}
    error = json.loads((tmp_path / "run/cells" / cells["flaky"] / "fold-0.error.json").read_text())
    assert error["attempts"] == 1 and "Traceback" in error["traceback"] and "FloatingPointError" in error["traceback"]
    assert (tmp_path / "run/cells" / cells["mean"] / "fold-1.json").exists()  # the healthy cell was stored
    assert any(m.startswith("FAILED frame/flaky fold 1/2") for m in messages)
    assert "0/2" in summary.leaderboard or "flaky" in summary.leaderboard


def test_retries_and_a_later_success_clears_the_error(tmp_path, grid):
    ATTEMPTS.clear()
    grid["aggregator"] = [{"name": "flaky", "fail_times": 1}]
    grid["retries"] = 1
    summary = run_grid(parse_grid(grid), tmp_path / "run", _registry(), say=lambda m: None, progress=False)
    assert not summary.failed  # fold 0 failed once, then succeeded on its retry
    records = sorted((tmp_path / "run").glob("cells/*/fold-*[0-9].json"))
    assert [json.loads(p.read_text())["attempts"] for p in records] == [2, 1]
    assert not list((tmp_path / "run").glob("cells/*/*.error.json"))


def test_rerun_retries_failed_folds_and_removes_their_errors(tmp_path, grid):
    ATTEMPTS.clear()
    grid["aggregator"] = [{"name": "flaky", "fail_times": 2}]
    first = run_grid(parse_grid(grid), tmp_path / "run", _registry(), say=lambda m: None, progress=False)
    assert len(first.failed) == 2 and len(list((tmp_path / "run").glob("cells/*/*.error.json"))) == 2
    second = run_grid(parse_grid(grid), tmp_path / "run", _registry(), say=lambda m: None, progress=False)
    assert second.folds_run == 2 and not second.failed
    assert not list((tmp_path / "run").glob("cells/*/*.error.json"))


def test_fail_fast_stops_at_the_first_failure(tmp_path, grid):
    ATTEMPTS.clear()
    grid["aggregator"] = ["flaky", "mean"]
    grid["fail_fast"] = True
    summary = run_grid(parse_grid(grid), tmp_path / "run", _registry(), say=lambda m: None, progress=False)
    assert len(summary.failed) == 1
    assert not list((tmp_path / "run").glob("cells/*/fold-*[0-9].json"))  # nothing ran after the failure


def test_user_error_in_a_fold_stops_the_run_with_one_line(tmp_path, tiny_grid, registry):
    tiny_grid["dataset"]["videos"] = 1  # one video: its windows are one group, which cannot make 2 folds
    with pytest.raises(DataError, match="cannot make 2 folds"):
        run_grid(parse_grid(tiny_grid), tmp_path / "run", registry, say=lambda m: None, progress=False)


def test_cli_exit_code_1_names_the_error_files(tmp_path, write_grid, tiny_grid):
    tiny_grid.update(level="frame", aggregator="mean", baselines=[])
    tiny_grid["train"]["lr"] = 1e30  # diverges: a NaN/inf loss in every fold
    result = CliRunner().invoke(main, ["run", str(write_grid(tiny_grid)), "--run-dir", str(tmp_path / "r"),
                                       "--no-progress"])
    assert result.exit_code == 1, result.stderr
    assert "2 folds failed in 1 cells" in result.stderr and "fold-<k>.error.json" in result.stderr


def test_sigkill_at_random_moments_never_loses_or_duplicates_a_fold(tmp_path, write_grid, tiny_grid):
    """Several kills at random points (during feature extraction, training, writing), then a clean finish."""
    tiny_grid["protocol"]["folds"] = 3
    tiny_grid["train"]["epochs"] = 6
    grid = write_grid(tiny_grid)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "benchkit.cli", "run", str(grid), "--run-dir", str(run_dir), "--no-progress"]
    rng = random.Random(1234)
    seen: dict[str, str] = {}
    for _ in range(4):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for path in run_dir.glob("cells/*/fold-*.json"):
            json.loads(path.read_text())  # every visible file parses: no partial file ever reads as valid
            key = str(path.relative_to(run_dir))
            assert seen.setdefault(key, path.read_text()) == path.read_text()  # never rewritten
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in run_dir.glob("cells/*/fold-*[0-9].json")]
    assert len(records) == 6 and len({(r["cell"], r["fold"]) for r in records}) == 6
    assert not list(run_dir.rglob("*.tmp"))
