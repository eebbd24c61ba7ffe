"""The driver of a grid: plan, resume what is stored, hand the missing folds to an executor, store every result.

Workers (``benchkit.run.folds``) extract or load features, fit, predict and score; only this module writes the run
directory, so a fold is stored exactly once whatever executor ran it. A fold that raises is recorded as
``fold-<k>.error.json`` (error, traceback) and the grid goes on; a ``BenchkitError`` (bad input) stops the run
with its one line. Stored folds are never lost: every file is written atomically, and a rerun resumes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from benchkit.grid.config import Grid
from benchkit.grid.plan import plan, resolve_metrics
from benchkit.learn.devices import resolve_device
from benchkit.profiling.environment import run_environment
from benchkit.registry.interfaces import Executor
from benchkit.registry.plugins import Registry
from benchkit.report.leaderboard import write_leaderboard
from benchkit.run.baseline_folds import run_baselines
from benchkit.run.folds import Datasets, FoldRunner, FoldTask, RemoteFolds, raise_user_error
from benchkit.run.profiles import profile_cells
from benchkit.run.provenance import plan_record
from benchkit.run.scoring import rescore
from benchkit.run.summaries import cell_summary, short_label
from benchkit.storage.store import RunStore, atomic_write_json, atomic_write_text

log = logging.getLogger("benchkit")


@dataclass
class RunSummary:
    run_dir: Path
    cells: int
    folds_total: int
    folds_stored: int
    folds_run: int
    seconds: float
    leaderboard: str
    backbone_calls: int
    failed: list[dict[str, Any]] = field(default_factory=list)  # one per failed fold: cell, fold, labels, error
    messages: list[str] = field(default_factory=list)


def build_executor(registry: Registry, grid: Grid, name: str | None = None) -> Executor:
    """The grid's executor (``executor:`` in the YAML), or the one named on the command line."""
    component = grid.executor if name is None else type(grid.executor)(name=name)
    return registry.build("executor", registry.resolve("executor", component.name, component.kwargs))


def run_grid(
    grid: Grid,
    run_dir: str | Path,
    registry: Registry,
    *,
    only: list[dict[str, str]] | None = None,
    raw_grid: dict[str, Any] | None = None,
    say: Callable[[str], None] = print,
    progress: bool = True,
    executor: Executor | None = None,
) -> RunSummary:
    start = time.perf_counter()
    cells = plan(grid, registry, only)
    metrics = resolve_metrics(registry, grid)
    executor = executor or build_executor(registry, grid)
    device = resolve_device(grid.train.device, "train.device")
    store = RunStore(run_dir)
    datasets = Datasets(registry, grid)
    n_splits = grid.protocol.splits
    raw_grid = raw_grid or grid.model_dump(mode="json")
    by_id = {pc.id: pc for pc in cells}

    with store:
        rewritten = [store.root / "environment.json", store.root / "plan.json"]
        for path in [*rewritten, *(store.cell_dir(pc.id) / "cell.json" for pc in cells)]:
            store.verify(path, "writing it again")  # a damaged one is moved aside and said so
        atomic_write_text(store.root / "grid.yaml", yaml.safe_dump(raw_grid, sort_keys=False))
        env = run_environment(device)  # also kept in every fold record: a resumed run may mix versions
        atomic_write_json(store.root / "environment.json", env)
        atomic_write_json(store.root / "plan.json", plan_record(grid, cells, metrics, datasets))
        for pc in cells:
            cell_record = {"id": pc.id, **pc.config, "labels": pc.cell.labels()}
            atomic_write_json(store.cell_dir(pc.id) / "cell.json", cell_record)

        stored = {(pc.id, k): store.load_fold(store.cell_dir(pc.id), k, predictions=True)
                  for pc in cells for k in range(n_splits)}
        pending = [FoldTask(pc.id, k) for pc in cells for k in range(n_splits) if stored[(pc.id, k)] is None]
        n_stored = len(stored) - len(pending)
        say(
            f"{grid.name}: {len(cells)} cells x {n_splits} {grid.protocol.unit} = {len(stored)} folds"
            f" ({n_stored} stored, {len(pending)} to run) -> {store.root}"
        )
        if n_stored:
            say(f"resuming: skipping {n_stored} stored folds")
        rescore(store, cells, metrics, stored, n_splits, datasets)
        run_baselines(store, grid, cells, datasets, metrics)

        runner = FoldRunner(grid, registry, cells=cells, progress=progress, datasets=datasets)
        work = runner if executor.in_process else RemoteFolds(raw_grid, only)
        left = {pc.id: sum(1 for t in pending if t.cell_id == pc.id) for pc in cells}
        failed: list[dict[str, Any]] = []
        bar = tqdm(total=len(pending), unit="fold", disable=not progress, dynamic_ncols=True, file=sys.stderr)
        try:
            for result in executor.map_unordered(work, pending):
                for message in result.messages if not executor.in_process else ():  # in process: logged already
                    log.warning(message)
                if result.user_error:
                    raise_user_error(result)
                pc = by_id[result.cell_id]
                folder = store.cell_dir(pc.id)
                if result.ok:
                    store.save_fold(folder, result.fold, {**result.record, "environment": env}, result.predictions)
                    store.clear_error(folder, result.fold)
                else:
                    store.save_error(folder, result.fold, {"cell": pc.id, "fold": result.fold, **result.error})
                    failed.append({"cell": pc.id, "fold": result.fold, "labels": pc.cell.labels(), **result.error})
                    say(f"FAILED {short_label(pc)} fold {result.fold + 1}/{n_splits}: {result.error['type']}: "
                        f"{result.error['message']} ({store.error_path(folder, result.fold)})")
                bar.set_description(f"{short_label(pc)} fold {result.fold + 1}/{n_splits}")
                bar.update(1)
                left[pc.id] -= 1
                if left[pc.id] == 0:
                    registry.cell_finished(cell={"id": pc.id, **pc.config}, summary=cell_summary(store, pc, n_splits),
                                           run_dir=str(store.root))
                if failed and grid.fail_fast:
                    say("fail_fast: stopping at the first failed fold")
                    executor.close(cancel=True)
                    break
        except BaseException:
            executor.close(cancel=True)
            raise
        finally:
            bar.close()
        executor.close()
        if grid.profile is not None:
            profile_cells(store, grid, cells, runner, registry, say)
        leaderboard = write_leaderboard(store)
    return RunSummary(
        run_dir=store.root,
        cells=len(cells),
        folds_total=len(stored),
        folds_stored=n_stored,
        folds_run=len(pending),
        seconds=time.perf_counter() - start,
        leaderboard=leaderboard,
        backbone_calls=runner.cache.backbone_calls,
        failed=failed,
    )


