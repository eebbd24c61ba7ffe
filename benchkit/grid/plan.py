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

from benchkit.errors import ConfigError, DataError, PluginError
from benchkit.grid.config import Cell, Component, Grid, TrainConfig, expand, stable_hash
from benchkit.grid.selection import SELECTABLE_COMPONENTS, combine, is_select, split_select
from benchkit.registry.plugins import Registry, Resolved

STRUCTURE_KEYS = ("epochs", "batch_size", "drop_last", "label_smoothing", "standardize")
"""Train keys that change the training loop itself: candidates differing in one of them train apart."""


@dataclass(frozen=True)
class Variant:
    """One candidate of a cell: its selected values (``{"train.lr": 1e-3}``), its recipe and what it trains."""

    values: dict[str, Any]
    train: TrainConfig
    aggregator: Resolved
    predictor: Resolved

    @property
    def architecture(self) -> str:
        """Candidates with the same architecture and loop (they differ only in optimiser settings: lr, weight
        decay, betas, eps, warm-up, schedule, gradient clipping) can train as one vectorised model."""
        loop = {k: getattr(self.train, k) for k in STRUCTURE_KEYS}
        return stable_hash([describe(self.aggregator), describe(self.predictor), loop])


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    dataset: Resolved
    backbone: Resolved
    aggregator: Resolved
    predictor: Resolved
    config: dict[str, Any]
    id: str
    variants: tuple[Variant, ...] = ()  # the candidates of a cell with selection (docs/grid.md); () without

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
    metrics = resolve_metrics(registry, grid)
    check_selection(grid, metrics)
    registry.resolve("executor", grid.executor.name, grid.executor.kwargs)
    planned, cache = [], {}

    def resolve(kind: str, name: str, kwargs: dict[str, Any]) -> Resolved:
        key = (kind, name, json.dumps(kwargs, sort_keys=True, default=str))
        if key not in cache:
            cache[key] = registry.resolve(kind, name, kwargs)
            if kind == "dataset":
                check_paths(cache[key])
        return cache[key]

    for cell in expand(grid, only or ()):
        parts, lists = {}, {f"train.{k}": v for k, v in grid.train_choices.items()}
        for kind in ("dataset", "backbone", "aggregator", "predictor"):
            component = getattr(cell, kind)
            kwargs, found = component_choices(kind, component)
            lists.update({f"{kind}.{k}": v for k, v in found.items()})
            if kind == "dataset" and cell.frames is not None:  # the frame-count sweep sets the window length
                kwargs["frames"] = cell.frames
            parts[kind] = resolve(kind, component.name, kwargs)
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
        variants = ()
        if lists:
            variants = tuple(variant(grid, cell, values, resolve) for values in candidates(lists, grid))
            config["selection"] = {"candidates": lists, **grid.selection_settings.model_dump()}
        planned.append(PlannedCell(cell=cell, config=config, id=stable_hash(config), variants=variants, **parts))
    ids = [p.id for p in planned]
    if len(set(ids)) != len(ids):
        raise PluginError("two cells of the grid resolve to the same configuration; remove the duplicate axis value")
    return planned


def check_selection(grid: Grid, metrics: dict[str, Resolved]) -> None:
    """The ``selection:`` settings that depend on the rest of the grid."""
    settings = grid.selection_settings
    listed = grid.train_choices or any(is_select(v) for kind in SELECTABLE_COMPONENTS for c in grid.axis(kind)
                                       for v in c.kwargs.values())
    if grid.selection is not None and not listed:  # the whole grid, whatever --only keeps
        raise ConfigError("selection: no train key or aggregator/predictor keyword lists candidates "
                          "({select: [...]}), so there is nothing to select")
    if settings.metric is not None and settings.metric not in metrics:
        raise ConfigError(f"selection.metric: {settings.metric!r} is not a metric of the grid "
                          f"({', '.join(metrics)})")
    if settings.validation_label is not None:
        if grid.protocol.kind != "fixed_split":
            raise ConfigError("selection.validation_label: only a fixed_split protocol has a labelled validation "
                              "split; use selection.validation (a share of the training groups)")
        if settings.refit:
            raise ConfigError("selection.refit: with validation_label the candidates already train on the whole "
                              "training split; remove refit")
        if settings.validation_label in (grid.protocol.test_label, grid.protocol.train_label):
            raise ConfigError(f"selection.validation_label: {settings.validation_label!r} is the protocol's "
                              f"{'test' if settings.validation_label == grid.protocol.test_label else 'train'}"
                              "_label; validation needs samples of its own")
        if "validation" in grid.selection.model_fields_set:
            raise ConfigError("selection.validation: with validation_label the dataset's split is the validation "
                              "data; remove one of the two")


def component_choices(kind: str, component: Component) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A component's keywords with candidate lists replaced by their first value, and the lists."""
    try:
        kwargs, found = split_select(component.kwargs, f"{kind} {component.display}")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if found and kind not in SELECTABLE_COMPONENTS:
        raise ConfigError(f"{kind} {component.display}: {', '.join(found)}: only train keys and aggregator or "
                          f"predictor keywords can be selected (the {kind} is the frozen input all candidates share)")
    return kwargs, found


def candidates(lists: dict[str, list[Any]], grid: Grid) -> list[dict[str, Any]]:
    try:
        return combine(lists, grid.selection_settings.combine)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def variant(grid: Grid, cell: Cell, values: dict[str, Any], resolve: Any) -> Variant:
    """The recipe and components of one candidate of ``cell``."""
    train = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("train.")}
    recipe = TrainConfig.model_validate({**grid.train.model_dump(), **train}) if train else grid.train
    parts = {}
    for kind in SELECTABLE_COMPONENTS:
        component = getattr(cell, kind)
        kwargs, _ = component_choices(kind, component)
        kwargs.update({k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f"{kind}.")})
        parts[kind] = resolve(kind, component.name, kwargs)
    return Variant(values=values, train=recipe, **parts)


def train_config(train: TrainConfig) -> dict[str, Any]:
    """The training recipe as it enters a cell's id; options added later enter it only when set, so the ids of
    runs stored before them stay valid."""
    return train.model_dump(exclude={"standardize"} if not train.standardize else None)
