"""Hyper-parameter selection inside one outer training fold: nested validation, never the test fold.

A cell with candidates (``PlannedCell.variants``, docs/grid.md) holds out whole groups of its fold's training part
(``selection.validation``; for a fixed split with ``selection.validation_label``, the dataset's own validation
split), trains every candidate on the rest (those sharing an architecture as one vectorised model,
benchkit/learn/together.py, which also decode together), decodes and scores the validation samples with the grid's
decoding and picks the candidate with the best ``selection.metric``; ties go to the candidate listed first. Then
the selected model is tested as it is, or (``selection.refit``) its configuration is trained again on the whole
training part; the reasons for the default are in docs/decisions.md. The fold record keeps every candidate's
validation scores, the selected values and how the candidates were trained and decoded (``selection`` in
fold-<k>.json).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchkit.errors import DataError
from benchkit.grid.config import Grid
from benchkit.grid.plan import PlannedCell, Variant
from benchkit.learn.together import fit_together, set_rng_state
from benchkit.learn.training import Batches, CellModel, Standardize, fit, seed_everything
from benchkit.registry.plugins import Resolved
from benchkit.run.splits import validation_split


@dataclass
class Selected:
    """What the test fold evaluates: the model, the samples it trained on, its history and the selection record."""

    model: CellModel
    trained_on: np.ndarray
    history: dict[str, Any]
    record: dict[str, Any]
    trainable: int


def validation_indices(grid: Grid, dataset: Any, train_idx: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray,
                                                                                            str]:
    """(inner training, validation) indices of one split's training part, and where validation came from."""
    settings, protocol = grid.selection_settings, grid.protocol
    if settings.validation_label is not None:
        labels = np.asarray(dataset.groups(protocol.group_key or "split"), dtype=object).astype(str)
        val = np.flatnonzero(labels == settings.validation_label)
        if not len(val):
            found = ", ".join(sorted(set(labels.tolist()))[:5])
            raise DataError(f"selection.validation_label: no sample is labelled {settings.validation_label!r} "
                            f"(labels: {found})")
        return train_idx, val, f"the dataset's {settings.validation_label!r} split"
    groups = dataset.groups(None if protocol.kind == "fixed_split" else protocol.group_key)
    inner, val = validation_split(train_idx, groups, settings.validation, split, protocol.seed)
    return inner, val, f"{settings.validation:g} of the training part's groups"


def select(
    grid: Grid, pc: PlannedCell, *, dataset: Any, feats: np.ndarray, tokens: np.ndarray, train_idx: np.ndarray,
    split: int, seed: int, device: torch.device, metrics: dict[str, Resolved],
    build: Callable[[Variant, Standardize | None], CellModel],
    validate: Callable[[CellModel, np.ndarray, np.ndarray], dict[str, float]],
    validate_together: Callable[[list[CellModel], str, np.ndarray, np.ndarray], list[dict[str, float]]] | None = None,
) -> Selected:
    """Train the candidates of ``pc`` on the inner training part, score them on validation, keep the best.

    ``build(variant, standardize)`` builds a candidate's model (the caller seeds); ``validate(model, eval_idx,
    train_idx)`` decodes ``eval_idx`` and returns its metrics; ``validate_together(models, scope, eval_idx,
    train_idx)`` does it for the models trained together in one vectorised pass, or raises
    ``NotImplementedError`` (then they decode one by one, and the record says why)."""
    settings = grid.selection_settings
    metric = settings.metric or next(iter(metrics))
    higher = bool(metrics[metric].entry.meta.get("higher_is_better", True))
    inner, val, source = validation_indices(grid, dataset, train_idx, split)
    inner_batches = Batches(feats, tokens, inner)
    inner_scaler = functools.cache(lambda: Standardize.fit(inner_batches))  # shared by the candidates that use it

    variants = list(pc.variants)
    groups: dict[str, list[int]] = {}
    for k, v in enumerate(variants):
        groups.setdefault(v.architecture, []).append(k)
    models: dict[int, CellModel] = {}
    histories: dict[int, dict] = {}
    states: dict[int, Any] = {}  # the random state each candidate's own fit would end in: decoding may draw (VEDiT)
    training = []
    together: dict[int, dict[str, float]] = {}  # validation metrics of the candidates decoded together
    decode_seconds = 0.0
    for members in groups.values():
        def build_member(i: int, members: list[int] = members) -> CellModel:
            seed_everything(seed)
            variant = variants[members[i]]
            return build(variant, inner_scaler() if variant.train.standardize else None)

        trained = fit_together(build_member, [variants[k].train for k in members], inner_batches, seed, device,
                               settings.vectorise)
        for i, k in enumerate(members):
            models[k], histories[k], states[k] = trained.models[i], trained.histories[i], trained.states[i]
        decoding = "one by one"
        if trained.vectorised and validate_together is not None and not all(h["diverged"] for h in trained.histories):
            tick = time.perf_counter()
            set_rng_state(states[members[0]], device)  # one state: where each candidate's own fit would end
            try:
                scored = validate_together(trained.models, trained.scope, val, inner)
                together.update(zip(members, scored, strict=True))
                decoding = "together"
            except NotImplementedError as e:
                decoding = f"one by one ({e})"
            decode_seconds += time.perf_counter() - tick
        training.append({"candidates": members, "vectorised": trained.vectorised, "decoding": decoding,
                         **({"scope": trained.scope} if trained.vectorised else {}),
                         **({"reason": trained.reason} if trained.reason else {}),
                         "train_seconds": sum(h["train_seconds"] for h in trained.histories) if not trained.vectorised
                         else trained.histories[0]["train_seconds"]})

    start = time.perf_counter()
    rows, scores = [], []
    for k, variant in enumerate(variants):
        history = histories[k]
        if history["diverged"]:
            scored = None
        elif k in together:
            scored = together[k]
        else:
            set_rng_state(states[k], device)  # every candidate decodes from where its separate fit would
            scored = validate(models[k], val, inner)
        value = None if scored is None else scored.get(metric)
        finite = value is not None and math.isfinite(value)
        scores.append(value if finite else None)
        rows.append({"values": variant.values, "validation": scored, "diverged": history["diverged"],
                     "final_loss": history["loss_curve"][-1] if history["loss_curve"] else None})
    valid = [k for k, s in enumerate(scores) if s is not None]
    if not valid:
        raise FloatingPointError(f"every one of the {len(variants)} candidates diverged or scored no "
                                 f"{metric} on validation")
    best = max(valid, key=lambda k: (scores[k] if higher else -scores[k], -k))  # ties: the first listed
    variant = variants[best]
    record = {
        "metric": metric, "higher_is_better": higher, "validation": {"source": source, "n_train": len(inner),
                                                                      "n_validation": len(val)},
        "candidates": rows, "selected": best, "values": variant.values, "refit": settings.refit,
        "training": training, "validation_seconds": decode_seconds + time.perf_counter() - start,
    }
    if settings.refit:
        seed_everything(seed)
        full = Batches(feats, tokens, train_idx)
        model = build(variant, Standardize.fit(full) if variant.train.standardize else None)
        history = fit(model, full, variant.train, seed, device)
        history["train_seconds"] += sum(t["train_seconds"] for t in training)
        trained_on = train_idx
    else:
        model, trained_on = models[best], inner
        set_rng_state(states[best], device)  # the test fold decodes as after the selected candidate's own fit
        history = {"loss_curve": histories[best]["loss_curve"],
                   "train_seconds": sum(t["train_seconds"] for t in training)}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Selected(model, trained_on, history, record, trainable)
