"""Synthetic run directories for the report tests: the JSON files ``benchkit run`` writes, with chosen numbers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ACTIONS = ["left", "right", "up", "down", "jump"]
ACCURACY = {"name": "accuracy", "higher_is_better": True, "unit": "%"}
ERROR = {"name": "error", "higher_is_better": False, "unit": ""}


def cell(cid: str, values: dict[str, list[float | None]], *, profile: dict | None = None, failed=(), **labels):
    """A cell spec: ``values[metric][k]`` is fold k's value (None: not stored); ``failed``: folds with an error."""
    base = {"dataset": "world", "backbone": "ViT", "level": "patch", "aggregator": "Mean", "predictor": "gpt2"}
    return {"id": cid, "labels": {**base, **labels}, "values": values, "profile": profile, "failed": list(failed)}


def _write(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _predictions(seed: int, n: int = 12, length: int = 4, accuracy: float = 0.7) -> dict:
    rng = random.Random(seed)
    refs = [[rng.randrange(len(ACTIONS)) for _ in range(length)] for _ in range(n)]
    preds = [[a if rng.random() < accuracy else rng.randrange(len(ACTIONS)) for a in r] for r in refs]
    return {"indices": list(range(n)), "predictions": preds, "references": refs}


def write_run(
    root: Path,
    cells: list[dict],
    *,
    folds: int = 3,
    metrics: tuple[dict, ...] = (ACCURACY,),
    baselines: dict[str, list[float]] | None = None,
    actions: list[str] | None = ACTIONS,
    report: dict | None = None,
    sweep: tuple[str, ...] = (),
    grid: str = "demo",
) -> Path:
    """Write plan.json, cell folders with fold records (and predictions), baselines and profiles under ``root``."""
    datasets: dict[str, dict] = {}
    for c in cells:
        c["dataset_key"] = c.get("dataset_key") or f"ds-{c['labels']['dataset']}"
        datasets.setdefault(c["dataset_key"], {"label": c["labels"]["dataset"], **({"actions": actions} if actions
                                                                                    else {})})
    baselines = {"random": [10.0, 12.0, 11.0], "majority": [30.0, 31.0, 29.0]} if baselines is None else baselines
    plan = {
        "grid": grid, "description": "a synthetic run", "folds": folds,
        "protocol": {"kind": "group_kfold", "folds": folds, "seed": 0}, "sweep": list(sweep),
        "report": {"decimals": 2, "columns": None, **(report or {})}, "metrics": list(metrics),
        "cells": [{"id": c["id"], "labels": c["labels"], "dataset_key": c["dataset_key"]} for c in cells],
        "datasets": datasets,
        "baselines": [{"name": name, "label": name.capitalize(), "dataset_key": key, "labels": {"dataset": d["label"]}}
                      for name in baselines for key, d in datasets.items()],
    }
    _write(root / "plan.json", plan)
    for i, c in enumerate(cells):
        folder = root / "cells" / c["id"]
        _write(folder / "cell.json", {"id": c["id"], "labels": c["labels"]})
        for k in range(folds):
            values = {m: v[k] for m, v in c["values"].items() if v[k] is not None}
            if k in c["failed"]:
                _write(folder / f"fold-{k}.error.json", {"type": "RuntimeError", "message": f"boom in fold {k}"})
            elif values:
                _write(folder / f"fold-{k}.predictions.json", _predictions(100 * i + k))
                _write(folder / f"fold-{k}.json", {"fold": k, "metrics": values})
        if c["profile"]:
            _write(folder / "profile.json", {"summary": c["profile"]})
    for name, values in baselines.items():
        for key in datasets:
            for k, v in enumerate(values[:folds]):
                _write(root / "baselines" / f"{name}-{key}" / f"fold-{k}.json",
                       {"baseline": name, "fold": k, "metrics": {m["name"]: v for m in metrics}})
    return root
