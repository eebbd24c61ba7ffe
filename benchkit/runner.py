"""The driver of a grid: plan, resume what is stored, hand the missing folds to an executor, store every result.

Workers (``benchkit.folds``) extract or load features, fit, predict and score; only this module writes the run
directory, so a fold is stored exactly once whatever executor ran it. A fold that raises is recorded as
``fold-<k>.error.json`` (error, traceback) and the grid goes on; a ``BenchkitError`` (bad input) stops the run
with its one line. Stored folds are never lost: every file is written atomically, and a rerun resumes.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

import benchkit
from benchkit.baselines import BASELINE_LABELS, BASELINES, baseline_predictions
from benchkit.config import Grid
from benchkit.devices import resolve_device
from benchkit.folds import Datasets, FoldRunner, FoldTask, RemoteFolds, fold_seed, raise_user_error, score
from benchkit.interfaces import Executor, FeatureSpec
from benchkit.plan import PlannedCell, plan, resolve_metrics
from benchkit.plugins import Registry, Resolved
from benchkit.report.leaderboard import write_leaderboard
from benchkit.stats import summarize
from benchkit.store import RunStore, atomic_write_json, atomic_write_text

log = logging.getLogger("benchkit")
PACKAGES = ("benchkit", "torch", "transformers", "timm", "numpy", "pydantic", "pluggy", "scipy")


def environment(device: torch.device) -> dict[str, Any]:
    """What produced the numbers: versions, git commit, device, threads."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=Path(benchkit.__file__).parent, capture_output=True, text=True, timeout=5
            )
            return out.stdout.strip() or None if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "benchkit": benchkit.__version__,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


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
        env = environment(device)  # also kept in every fold record: a resumed run may mix versions
        atomic_write_json(store.root / "environment.json", env)
        atomic_write_json(store.root / "plan.json", _plan_record(grid, cells, metrics, datasets))
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
        _rescore(store, cells, metrics, stored, n_splits, datasets)
        _run_baselines(store, grid, cells, datasets, metrics)

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
                    say(f"FAILED {_short(pc)} fold {result.fold + 1}/{n_splits}: {result.error['type']}: "
                        f"{result.error['message']} ({store.error_path(folder, result.fold)})")
                bar.set_description(f"{_short(pc)} fold {result.fold + 1}/{n_splits}")
                bar.update(1)
                left[pc.id] -= 1
                if left[pc.id] == 0:
                    registry.cell_finished(cell={"id": pc.id, **pc.config}, summary=_cell_summary(store, pc, n_splits),
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
        if grid.profile:
            _profile_cells(store, grid, cells, runner, registry, say)
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


def _short(pc: PlannedCell) -> str:
    sweep = "".join(f" {k}={v:g}" for k, v in pc.cell.labels().items() if k in pc.cell.grid.sweep.axes())
    return f"{pc.cell.level}/{pc.cell.aggregator.display}{sweep}"


def _plan_record(grid: Grid, cells: list[PlannedCell], metrics: dict[str, Resolved], datasets: Datasets) -> dict:
    return {
        "grid": grid.name,
        "description": grid.description,
        "folds": grid.protocol.splits,
        "protocol": grid.protocol.model_dump(),
        "sweep": grid.sweep.axes(),
        "report": grid.report.model_dump(),
        "metrics": [
            {"name": n, "plugin": r.entry.name, "kwargs": r.kwargs,
             "higher_is_better": bool(r.entry.meta.get("higher_is_better", True)),
             "unit": r.entry.meta.get("unit", ""),
             **{k: v for k, v in r.entry.meta.items() if k not in ("higher_is_better", "unit", "description")}}
            for n, r in metrics.items()
        ],
        "cells": [{"id": pc.id, "labels": pc.cell.labels(), "dataset_key": pc.dataset_key} for pc in cells],
        "datasets": {
            key: {"label": pc.cell.dataset.display,
                  "actions": list(datasets.get(key, pc.dataset).dataset.vocabulary.actions)}
            for key, pc in _first_cell_per_dataset(cells).items()
        },
        "baselines": [
            {"name": b, "label": BASELINE_LABELS[b], "dataset_key": key, "labels": {"dataset": pc.cell.dataset.display}}
            for b in grid.baselines
            for key, pc in _first_cell_per_dataset(cells).items()
        ],
    }


def _first_cell_per_dataset(cells: list[PlannedCell]) -> dict[str, PlannedCell]:
    out: dict[str, PlannedCell] = {}
    for pc in cells:
        out.setdefault(pc.dataset_key, pc)
    return out


def _rescore(store: RunStore, cells, metrics, stored, n_splits, datasets: Datasets) -> None:
    """Stored folds that lack a metric now in the grid are scored from their stored predictions (no retraining)."""
    for pc in cells:
        for k in range(n_splits):
            record = stored[(pc.id, k)]
            if record is None or set(metrics) <= set(record["metrics"]):
                continue
            preds = store.load_predictions(store.cell_dir(pc.id), k)
            vocabulary = datasets.get(pc.dataset_key, pc.dataset).dataset.vocabulary
            record["metrics"].update(
                score(metrics, preds["predictions"], preds["references"], vocabulary, preds.get("candidates"))
            )
            store.save_fold(store.cell_dir(pc.id), k, record, None)


def _run_baselines(store: RunStore, grid: Grid, cells, datasets: Datasets, metrics) -> None:
    for key, pc in _first_cell_per_dataset(cells).items():
        for name in grid.baselines:
            folder = store.baseline_dir(name, key)
            for k in range(grid.protocol.splits):
                record = store.load_fold(folder, k, predictions=True)
                if record is not None and set(metrics) <= set(record["metrics"]):
                    continue
                bundle = datasets.get(key, pc.dataset)
                train_idx, test_idx = bundle.splits[k]
                test_refs = [bundle.refs[i] for i in test_idx]
                vocabulary = bundle.dataset.vocabulary
                kind, offset = BASELINES[name]
                preds = baseline_predictions(
                    kind, [bundle.refs[i] for i in train_idx], len(test_idx), len(vocabulary.actions),
                    seed=fold_seed(grid, k), length_offset=offset,
                )
                store.save_fold(
                    folder, k,
                    {"baseline": name, "fold": k, "metrics": score(metrics, preds, test_refs, vocabulary),
                     "n_train": len(train_idx), "n_test": len(test_idx)},
                    {"indices": test_idx.tolist(), "predictions": preds, "references": test_refs},
                )


def _cell_summary(store: RunStore, pc: PlannedCell, n_splits: int) -> dict[str, Any]:
    records = [store.load_fold(store.cell_dir(pc.id), k) for k in range(n_splits)]
    records = [r for r in records if r]
    names = records[0]["metrics"] if records else {}
    return {
        "labels": pc.cell.labels(),
        "metrics": {m: vars(summarize([r["metrics"][m] for r in records])) for m in names},
        "folds": len(records),
        "failed": n_splits - len(records),
    }


def _profile_cells(store: RunStore, grid: Grid, cells, runner: FoldRunner, registry: Registry, say) -> None:
    """Each cell profiled once (``profile.json`` beside its folds; redone only when the options change)."""
    from benchkit.profiling import ProfileOptions, profile_cell

    options = ProfileOptions.from_config(grid.profile)
    wanted = dataclasses.asdict(options)
    for pc in cells:
        path = store.cell_dir(pc.id) / "profile.json"
        stored = store.verify(path, "profiling the cell again")  # None when absent or damaged (moved aside)
        if isinstance(stored, dict) and stored.get("options") == wanted:
            continue
        bundle = runner.datasets.get(pc.dataset_key, pc.dataset)
        cached = runner.features(pc, bundle.dataset)
        feats = cached.level(pc.cell.level)
        spec = FeatureSpec(level=pc.cell.level, dim=feats.shape[-1], frames=feats.shape[1], grid=cached.grid)
        video = bundle.dataset.video(0)
        shape = tuple(video.shape[:3]) if getattr(bundle.dataset, "kind", "video") == "video" else None
        say(f"profiling {_short(pc)}")
        result = profile_cell(registry, pc, spec, bundle.dataset.vocabulary, bundle.tokens.shape[1], options,
                              video_shape=shape)
        atomic_write_json(path, {**result, "options": wanted})
