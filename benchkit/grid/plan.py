"""Resolve a grid against the registry: plugin names, keyword arguments, levels, data paths and cell ids.

Everything here runs before any model is built, so ``benchkit validate`` and ``benchkit run`` fail on the same
user mistakes, with the same one-line messages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.errors import DataError, PluginError
from benchkit.grid.config import Cell, Grid, TrainConfig, expand, stable_hash
from benchkit.registry.plugins import Registry, Resolved


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    dataset: Resolved
    backbone: Resolved
    aggregator: Resolved
    predictor: Resolved
    config: dict[str, Any]
    id: str

    @property
    def dataset_key(self) -> str:
        return stable_hash(self.config["dataset"])


def describe(resolved: Resolved) -> dict[str, Any]:
    """The part of a resolved component that defines its behaviour (hashed into cell ids)."""
    return {
        "plugin": resolved.entry.name,
        "preset": resolved.preset,
        "kwargs": resolved.kwargs,
        "version": resolved.entry.meta.get("version", resolved.entry.source.version),
    }


def check_paths(resolved: Resolved) -> None:
    for key in resolved.entry.meta.get("paths", ()):
        value = resolved.kwargs.get(key)
        if value is None:
            continue
        if not isinstance(value, str | os.PathLike):
            raise DataError(f"dataset {resolved.entry.name!r}: {key} must be a path, got {type(value).__name__}")
        try:  # `~nouser/x` (RuntimeError), a NUL byte (ValueError), a name too long (OSError)
            exists = Path(value).expanduser().exists()
        except (OSError, ValueError, RuntimeError):
            exists = False
        if not exists:
            raise DataError(f"dataset {resolved.entry.name!r}: {key} does not exist: {str(value)[:200]}")


def resolve_metrics(registry: Registry, grid: Grid) -> dict[str, Resolved]:
    return {m.display: registry.resolve("metric", m.name, m.kwargs) for m in grid.metrics}


def plan(grid: Grid, registry: Registry, only: list[dict[str, str]] | None = None) -> list[PlannedCell]:
    """Expand the grid and resolve every cell; raises a one-line ``BenchkitError`` on the first problem."""
    resolve_metrics(registry, grid)
    registry.resolve("executor", grid.executor.name, grid.executor.kwargs)
    planned, cache = [], {}
    for cell in expand(grid, only or ()):
        parts = {}
        for kind in ("dataset", "backbone", "aggregator", "predictor"):
            component = getattr(cell, kind)
            kwargs = dict(component.kwargs)
            if kind == "dataset" and cell.frames is not None:  # the frame-count sweep sets the window length
                kwargs["frames"] = cell.frames
            key = (kind, component.name, json.dumps(kwargs, sort_keys=True, default=str))
            if key not in cache:
                cache[key] = registry.resolve(kind, component.name, kwargs)
                if kind == "dataset":
                    check_paths(cache[key])
            parts[kind] = cache[key]
        for method, wanted in (("logits", grid.decode.viterbi), ("candidates", grid.decode.candidates > 1)):
            if wanted and not hasattr(parts["predictor"].entry.factory, method):
                raise PluginError(
                    f"predictor {cell.predictor.display!r} has no {method}(), which decode needs; use a slot "
                    f"predictor (vedit, transformer-encoder, ...) or change decode"
                )
        levels = parts["aggregator"].entry.meta.get("levels", ())
        if cell.level not in levels:
            raise PluginError(
                f"aggregator {cell.aggregator.display!r} does not support level {cell.level!r} "
                f"(supports: {', '.join(levels)}); drop it with exclude or --only"
            )
        config = {
            "task": grid.task,
            "level": cell.level,
            **{kind: describe(r) for kind, r in parts.items()},
            "protocol": grid.protocol.model_dump(),
            **({"train_fraction": cell.train_fraction} if cell.train_fraction is not None else {}),
            "train": train_config(grid.train),
            "decode": grid.decode.model_dump(),
            "seed": grid.seed,
        }
        planned.append(PlannedCell(cell=cell, config=config, id=stable_hash(config), **parts))
    ids = [p.id for p in planned]
    if len(set(ids)) != len(ids):
        raise PluginError("two cells of the grid resolve to the same configuration; remove the duplicate axis value")
    return planned


def train_config(train: TrainConfig) -> dict[str, Any]:
    """The training recipe as it enters a cell's id; options added later enter it only when set, so the ids of
    runs stored before them stay valid."""
    return train.model_dump(exclude={"standardize"} if not train.standardize else None)
