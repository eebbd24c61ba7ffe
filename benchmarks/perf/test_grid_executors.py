"""Grid throughput: the quickstart grid with the ``local`` executor (folds one after another in the driver, torch
on every core) against ``process`` (one worker per core, one torch thread each), on a warm feature cache so both
time the folds alone. Both must store every fold, with no failure; whether their metrics are identical is
reported (thread counts differ, so floating-point sums may too).
"""

from __future__ import annotations

import os

import pytest
import torch
from grids import fold_metrics, quickstart, run

from benchkit.run.folds import FoldRunner


@pytest.fixture
def warm_cache(registry, cache_dir, request):
    """Extract the grid's features once, through the runner's own ``features`` (then every run reads them)."""
    raw, grid = quickstart(request.config.getoption("--perf-grid-set"))
    runner = FoldRunner(grid, registry)
    for pc in runner.cells.values():
        runner.features(pc, runner.datasets.get(pc.dataset_key, pc.dataset).dataset)
    return raw, grid


def test_local_vs_process_executor(warm_cache, benchmark, registry, record, measure, tmp_path, request):
    raw, grid = warm_cache
    results = {}
    local, local_s = measure(lambda: run(raw, grid, tmp_path / "local", registry, "local"))
    process, process_s = measure(lambda: run(raw, grid, tmp_path / "process", registry, "process"),
                                 benchmark=benchmark)
    for summary in (local, process):
        assert not summary.failed and summary.folds_run == summary.folds_total > 0
        results[summary.run_dir.name] = fold_metrics(summary)
    assert results["local"].keys() == results["process"].keys()
    record(benchmark, "grid executors: quickstart grid",
           overrides=" ".join(request.config.getoption("--perf-grid-set")) or "none", cores=os.cpu_count(),
           folds=local.folds_total, local_s=local_s, local_threads=torch.get_num_threads(), process_s=process_s,
           process_workers=os.cpu_count(), local_folds_per_min=60 * local.folds_total / local_s,
           process_folds_per_min=60 * process.folds_total / process_s, process_speedup=local_s / process_s,
           same_metrics=results["local"] == results["process"])
