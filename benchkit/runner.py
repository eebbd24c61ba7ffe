"""Cells x folds: extract (or load cached) features, fit, predict, score, store; resume what is stored."""

from __future__ import annotations

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

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

import benchkit
from benchkit.baselines import BASELINE_LABELS, baseline_predictions
from benchkit.config import Grid, stable_hash
from benchkit.errors import DataError
from benchkit.features import CachedFeatures, FeatureCache
from benchkit.interfaces import Dataset, FeatureSpec, PredictorSpec
from benchkit.plan import PlannedCell, plan, resolve_metrics
from benchkit.plugins import Registry, Resolved
from benchkit.report.leaderboard import write_leaderboard
from benchkit.splits import group_kfold
from benchkit.stats import summarize
from benchkit.store import RunStore, atomic_write_json, atomic_write_text
from benchkit.training import Batches, CellModel, fit, predict, resolve_device, seed_everything

log = logging.getLogger("benchkit")
PACKAGES = ("benchkit", "torch", "transformers", "numpy", "pydantic", "pluggy", "scipy")


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
    messages: list[str] = field(default_factory=list)


class _DataContext:
    """Datasets, their splits and encoded targets, built once per dataset configuration and shared by cells."""

    def __init__(self, registry: Registry, grid: Grid) -> None:
        self.registry, self.grid = registry, grid
        self._datasets: dict[str, tuple[Dataset, list, np.ndarray, list[list[int]]]] = {}

    def get(self, key: str, resolved: Resolved) -> tuple[Dataset, list, np.ndarray, list[list[int]]]:
        if key not in self._datasets:
            dataset = self.registry.build("dataset", resolved)
            n = len(dataset)
            if n == 0:
                raise DataError(f"dataset {resolved.entry.name!r} has no samples")
            refs = [list(dataset.targets(i)) for i in range(n)]
            max_len = max(len(r) for r in refs) + 2
            tokens = np.array([dataset.vocabulary.encode(r, max_len) for r in refs], dtype=np.int64)
            p = self.grid.protocol
            folds = group_kfold(dataset.groups(p.group_key), p.folds, p.seed)
            self._datasets[key] = (dataset, folds, tokens, refs)
        return self._datasets[key]


def _score(metrics: dict[str, Resolved], predictions: list[list[int]], references: list[list[int]]) -> dict:
    return {name: float(r.entry.factory(predictions, references, **r.kwargs)) for name, r in metrics.items()}


def run_grid(
    grid: Grid,
    run_dir: str | Path,
    registry: Registry,
    *,
    only: list[dict[str, str]] | None = None,
    raw_grid: dict[str, Any] | None = None,
    say: Callable[[str], None] = print,
    progress: bool = True,
) -> RunSummary:
    start = time.perf_counter()
    cells = plan(grid, registry, only)
    metrics = resolve_metrics(registry, grid)
    device = resolve_device(grid.train.device)
    store = RunStore(run_dir)
    cache = FeatureCache(grid.cache_dir)
    data = _DataContext(registry, grid)
    folds_n = grid.protocol.folds

    with store:
        atomic_write_text(store.root / "grid.yaml", yaml.safe_dump(raw_grid or grid.model_dump(), sort_keys=False))
        atomic_write_json(store.root / "environment.json", environment(device))
        atomic_write_json(store.root / "plan.json", _plan_record(grid, cells, metrics))
        for pc in cells:
            cell_record = {"id": pc.id, **pc.config, "labels": pc.cell.labels()}
            atomic_write_json(store.cell_dir(pc.id) / "cell.json", cell_record)

        stored = {(pc.id, k): store.load_fold(store.cell_dir(pc.id), k) for pc in cells for k in range(folds_n)}
        pending = [(pc, k) for pc in cells for k in range(folds_n) if stored[(pc.id, k)] is None]
        n_stored = len(stored) - len(pending)
        say(
            f"{grid.name}: {len(cells)} cells x {folds_n} folds = {len(stored)} folds"
            f" ({n_stored} stored, {len(pending)} to run) -> {store.root}"
        )
        if n_stored:
            say(f"resuming: skipping {n_stored} stored folds")
        _rescore(store, cells, metrics, stored, folds_n)
        _run_baselines(store, grid, cells, data, metrics)

        bar = tqdm(total=len(pending), unit="fold", disable=not progress, dynamic_ncols=True, file=sys.stderr)
        features: dict[tuple[str, str], CachedFeatures] = {}
        for ci, pc in enumerate(cells):
            todo = [k for p, k in pending if p.id == pc.id]
            if not todo:
                continue
            dataset, folds, tokens, refs = data.get(pc.dataset_key, pc.dataset)
            fkey = (pc.dataset_key, stable_hash(pc.config["backbone"]))
            if fkey not in features:
                features[fkey] = _features(cache, registry, pc, dataset, progress)
            feats = features[fkey].level(pc.cell.level)
            for k in todo:
                bar.set_description(f"cell {ci + 1}/{len(cells)} {_short(pc)} fold {k + 1}/{folds_n}")
                record, preds = _run_fold(registry, grid, pc, k, folds[k], feats, features[fkey], tokens, refs,
                                          dataset, metrics, device)
                store.save_fold(store.cell_dir(pc.id), k, record, preds)
                bar.update(1)
            registry.cell_finished(cell={"id": pc.id, **pc.config}, summary=_cell_summary(store, pc, folds_n),
                                   run_dir=str(store.root))
        bar.close()
        leaderboard = write_leaderboard(store)
    return RunSummary(
        run_dir=store.root,
        cells=len(cells),
        folds_total=len(stored),
        folds_stored=n_stored,
        folds_run=len(pending),
        seconds=time.perf_counter() - start,
        leaderboard=leaderboard,
        backbone_calls=cache.backbone_calls,
    )


def _short(pc: PlannedCell) -> str:
    return f"{pc.cell.level}/{pc.cell.aggregator.display}"


def _plan_record(grid: Grid, cells: list[PlannedCell], metrics: dict[str, Resolved]) -> dict[str, Any]:
    return {
        "grid": grid.name,
        "description": grid.description,
        "folds": grid.protocol.folds,
        "protocol": grid.protocol.model_dump(),
        "report": grid.report.model_dump(),
        "metrics": [
            {"name": n, "higher_is_better": bool(r.entry.meta.get("higher_is_better", True)),
             "unit": r.entry.meta.get("unit", "")}
            for n, r in metrics.items()
        ],
        "cells": [{"id": pc.id, "labels": pc.cell.labels(), "dataset_key": pc.dataset_key} for pc in cells],
        "baselines": [
            {"name": b, "label": BASELINE_LABELS[b], "dataset_key": key, "labels": labels}
            for b in grid.baselines
            for key, labels in _datasets_of(cells).items()
        ],
    }


def _datasets_of(cells: list[PlannedCell]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for pc in cells:
        out.setdefault(pc.dataset_key, {"dataset": pc.cell.dataset.display})
    return out


def _rescore(store: RunStore, cells, metrics, stored, folds_n) -> None:
    """Stored folds that lack a metric now in the grid are scored from their stored predictions (no retraining)."""
    for pc in cells:
        for k in range(folds_n):
            record = stored[(pc.id, k)]
            if record is None or set(metrics) <= set(record["metrics"]):
                continue
            preds = store.load_predictions(store.cell_dir(pc.id), k)
            record["metrics"].update(_score(metrics, preds["predictions"], preds["references"]))
            store.save_fold(store.cell_dir(pc.id), k, record, None)


def _run_baselines(store: RunStore, grid: Grid, cells, data: _DataContext, metrics) -> None:
    for key in _datasets_of(cells):
        resolved = next(pc.dataset for pc in cells if pc.dataset_key == key)
        for name in grid.baselines:
            folder = store.baseline_dir(name, key)
            for k in range(grid.protocol.folds):
                record = store.load_fold(folder, k)
                if record is not None and set(metrics) <= set(record["metrics"]):
                    continue
                dataset, folds, _, refs = data.get(key, resolved)
                train_idx, test_idx = folds[k]
                test_refs = [refs[i] for i in test_idx]
                preds = baseline_predictions(
                    name, [refs[i] for i in train_idx], len(test_idx), len(dataset.vocabulary.actions),
                    seed=grid.seed * 1000 + k,
                )
                store.save_fold(
                    folder, k,
                    {"baseline": name, "fold": k, "metrics": _score(metrics, preds, test_refs),
                     "n_train": len(train_idx), "n_test": len(test_idx)},
                    {"indices": test_idx.tolist(), "predictions": preds, "references": test_refs},
                )


def _features(cache: FeatureCache, registry: Registry, pc: PlannedCell, dataset: Dataset, progress: bool):
    backbone = registry.build("backbone", pc.backbone)
    label = f"features {pc.cell.backbone.display} on {pc.cell.dataset.display}"
    bar = tqdm(total=len(dataset), unit="video", desc=label, disable=not progress, leave=False, file=sys.stderr)

    def tick(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        return cache.get_or_compute(dataset, backbone, pc.config["backbone"], progress=tick)
    finally:
        bar.close()


def _run_fold(registry, grid, pc, k, split, feats, cached, tokens, refs, dataset, metrics, device):
    train_idx, test_idx = (np.sort(s) for s in split)
    seed = grid.seed * 1000 + k
    seed_everything(seed)
    spec = FeatureSpec(level=pc.cell.level, dim=feats.shape[-1], frames=feats.shape[1], grid=cached.grid)
    aggregator = registry.build("aggregator", pc.aggregator, spec)
    pspec = PredictorSpec(
        prefix_dim=aggregator.out_dim, prefix_tokens=aggregator.num_tokens,
        vocabulary=dataset.vocabulary, max_len=tokens.shape[1],
    )
    model = CellModel(aggregator, registry.build("predictor", pc.predictor, pspec))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    history = fit(model, Batches(feats, tokens, train_idx), grid.train, seed, device)
    t0 = time.perf_counter()
    generated = predict(model, Batches(feats, tokens, test_idx), grid.train.eval_batch_size, device)
    eval_seconds = time.perf_counter() - t0
    decoded = [dataset.vocabulary.decode(g) for g in generated]
    test_refs = [refs[i] for i in test_idx]
    record = {
        "cell": pc.id,
        "fold": k,
        "seed": seed,
        "metrics": _score(metrics, decoded, test_refs),
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "trainable_params": trainable,
        "eval_seconds": eval_seconds,
        "device": str(device),
        **history,
    }
    predictions = {"indices": test_idx.tolist(), "predictions": decoded, "references": test_refs,
                   "tokens": generated}
    return record, predictions


def _cell_summary(store: RunStore, pc: PlannedCell, folds_n: int) -> dict[str, Any]:
    records = [store.load_fold(store.cell_dir(pc.id), k) for k in range(folds_n)]
    records = [r for r in records if r]
    names = records[0]["metrics"] if records else {}
    return {
        "labels": pc.cell.labels(),
        "metrics": {m: vars(summarize([r["metrics"][m] for r in records])) for m in names},
        "folds": len(records),
    }
