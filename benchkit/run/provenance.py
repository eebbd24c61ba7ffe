"""What a run planned: ``plan.json`` (cells, metrics, datasets, baselines). What produced its numbers (versions,
git commit, device) is ``benchkit.profiling.environment.run_environment``, in ``environment.json`` and every fold."""

from __future__ import annotations

from benchkit.grid.config import Grid
from benchkit.grid.plan import PlannedCell
from benchkit.registry.plugins import Resolved
from benchkit.run.folds import Datasets
from benchkit.sequence.baselines import BASELINE_LABELS


def plan_record(grid: Grid, cells: list[PlannedCell], metrics: dict[str, Resolved], datasets: Datasets) -> dict:
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
            for key, pc in first_cell_per_dataset(cells).items()
        },
        "baselines": [
            {"name": b, "label": BASELINE_LABELS[b], "dataset_key": key, "labels": {"dataset": pc.cell.dataset.display}}
            for b in grid.baselines
            for key, pc in first_cell_per_dataset(cells).items()
        ],
    }


def first_cell_per_dataset(cells: list[PlannedCell]) -> dict[str, PlannedCell]:
    out: dict[str, PlannedCell] = {}
    for pc in cells:
        out.setdefault(pc.dataset_key, pc)
    return out
