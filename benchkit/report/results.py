"""A run directory read for reporting: per cell (and baseline) the metrics of every stored fold, failed folds,
the profiling summary and the dataset's action names. Everything a report shows comes from here; nothing is run.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.errors import BenchkitError, StoreError
from benchkit.stats import Summary, summarize
from benchkit.store import RunStore, read_json

AXES = ("dataset", "backbone", "level", "aggregator", "predictor")
SWEEP_KEYS = ("train_fraction", "frames")  # numeric label keys a sensitivity figure can sweep
PROFILE_KEYS = ("params_M", "trainable_params_M", "gflops", "gmacs", "latency_ms", "throughput", "peak_mem_mb")


@dataclass
class Result:
    """One cell or baseline: ``folds`` maps a fold index to that fold's metrics (only stored folds)."""

    key: str
    folder: Path
    labels: dict[str, Any]
    dataset_key: str
    baseline: bool = False
    folds: dict[int, dict[str, float]] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)
    profile: dict[str, float] = field(default_factory=dict)

    def values(self, metric: str) -> dict[int, float]:
        """Fold index → value of ``metric`` (folds that lack it or score NaN are left out)."""
        return {k: float(m[metric]) for k, m in sorted(self.folds.items())
                if metric in m and m[metric] is not None and not math.isnan(float(m[metric]))}

    def summary(self, metric: str) -> Summary:
        return summarize(list(self.values(metric).values()))

    def label(self, key: str) -> str:
        """A label as text; numbers (sweep values) as the grid's labels write them: 0.5, 16."""
        value = self.labels.get(key)
        if value is None:
            return ""
        return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)

    def name(self, keys: Sequence[str] = ("level", "aggregator", "backbone"), sweeps: bool = True) -> str:
        """A short human name from the given label keys and (``sweeps``) any sweep value:
        ``patch / InvPatch / VideoMAE``, ``patch / InvPatch / VideoMAE / train_fraction=0.5``."""
        parts = [self.label(k) for k in keys if self.label(k)]
        parts += [f"{k}={self.label(k)}" for k in SWEEP_KEYS if sweeps and k in self.labels and k not in keys]
        return " / ".join(parts) or self.key


@dataclass
class RunResults:
    root: Path
    store: RunStore
    plan: dict[str, Any]
    metrics: list[dict[str, Any]]
    folds: int
    cells: list[Result]
    baselines: list[Result]

    @property
    def report_options(self) -> dict[str, Any]:
        return self.plan.get("report") or {}

    def metric(self, name: str | None) -> dict[str, Any]:
        """The named metric's record (``name``, ``higher_is_better``, ``unit``); None → the grid's first metric."""
        if name is None:
            return self.metrics[0]
        for m in self.metrics:
            if m["name"] == name:
                return m
        raise BenchkitError(f"unknown metric {name!r}; this run has {', '.join(m['name'] for m in self.metrics)}")

    def actions(self, dataset_key: str) -> list[str] | None:
        """The dataset's action names (``plan["datasets"][key]["actions"]``), or None when the plan lacks them."""
        entry = (self.plan.get("datasets") or {}).get(dataset_key) or {}
        actions = entry.get("actions")
        return [str(a) for a in actions] if actions else None

    def varying(self, results: list[Result] | None = None) -> list[str]:
        """Label keys whose value differs between cells: the axes first, then any other key (sweeps)."""
        results = self.cells if results is None else results
        keys = list(AXES) + sorted({k for r in results for k in r.labels} - set(AXES))
        return [k for k in keys if len({r.label(k) for r in results}) > 1]

    def sweeps(self) -> list[str]:
        """Sweep keys (``plan["sweep"]``, else the known ones) whose value differs between cells."""
        keys = self.plan.get("sweep") or SWEEP_KEYS
        return [k for k in keys if len({c.label(k) for c in self.cells if k in c.labels}) > 1]

    def find(self, selector: str) -> Result:
        """A cell (or baseline) by id or unique id prefix (``majority`` names the majority baseline), or by
        ``KEY=PATTERN[,KEY=PATTERN]`` on its labels with wildcards; the selector must name exactly one."""
        every = [*self.cells, *self.baselines]
        if "=" in selector:
            pairs = [p.partition("=") for p in selector.split(",")]
            if any(not sep or not k.strip() for k, sep, _ in pairs):
                raise BenchkitError(f"cell selector {selector!r} is not KEY=PATTERN[,KEY=PATTERN]")
            hits = [c for c in every
                    if all(fnmatch.fnmatchcase(c.label(k.strip()), v.strip()) for k, _, v in pairs)]
        else:
            hits = [c for c in every if c.key.startswith(selector)]
        if len(hits) != 1:
            what = "no cell" if not hits else f"{len(hits)} cells ({', '.join(c.key for c in hits[:5])})"
            raise BenchkitError(f"cell selector {selector!r} matches {what}; give a cell id or a narrower selector")
        return hits[0]


def _failed_folds(store: RunStore, folder: Path, folds: int, stored: dict[int, dict]) -> list[int]:
    """Folds recorded as failed (``fold-<k>.error.json``) and not stored since."""
    return [k for k in range(folds) if k not in stored and store.error_path(folder, k).exists()]


def _profile(folder: Path) -> dict[str, float]:
    path = folder / "profile.json"
    if not path.is_file():
        return {}
    try:
        summary = read_json(path).get("summary") or {}
    except (StoreError, AttributeError):
        return {}
    return {k: float(v) for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _load(store: RunStore, key: str, folder: Path, labels: dict, dataset_key: str, baseline: bool,
          folds: int) -> Result:
    stored = {k: r["metrics"] for k in range(folds) if (r := store.load_fold(folder, k)) is not None}
    return Result(key, folder, dict(labels), dataset_key, baseline, stored, _failed_folds(store, folder, folds, stored),
                  {} if baseline else _profile(folder))


def _shared_sweeps(cells: list[Result], dataset_key: str) -> dict[str, Any]:
    """Sweep values that every cell on a dataset configuration shares (a frame-count sweep builds one dataset per
    value, so each has its own baselines), to label that dataset's baseline rows."""
    same = [c for c in cells if c.dataset_key == dataset_key]
    return {k: same[0].labels[k] for k in SWEEP_KEYS
            if same and all(k in c.labels and c.labels[k] == same[0].labels[k] for c in same)}


def load_results(store: RunStore | str | Path) -> RunResults:
    store = store if isinstance(store, RunStore) else RunStore(store)
    plan = store.plan()
    folds = int(plan["folds"])
    cells = [_load(store, c["id"], store.cell_dir(c["id"]), c["labels"], c.get("dataset_key", ""), False, folds)
             for c in plan["cells"]]
    baselines = [
        _load(store, f"{b['name']}-{b['dataset_key']}", store.baseline_dir(b["name"], b["dataset_key"]),
              {**_shared_sweeps(cells, b["dataset_key"]), **b["labels"], "aggregator": b["label"]},
              b["dataset_key"], True, folds)
        for b in plan["baselines"]
    ]
    return RunResults(store.root, store, plan, list(plan["metrics"]), folds, cells, baselines)
