"""A run directory read for reporting: per cell (and baseline) the metrics of every stored fold, failed folds,
the profiling summary and the dataset's action names. Everything a report shows comes from here; nothing is run.

Several run directories (one grid split by ``--only`` across machines, or different grids that share cells) read as
one: cells are taken in the order the runs list them, a cell in more than one run gets the union of its stored
folds (the first run that stored a fold gives it), and each fold remembers the run it came from. Runs are refused
in one line when they cannot be one table: different protocols, a metric defined two ways, or a cell id that two
runs resolve to different configurations or ran in different environments (torch, transformers, timm, device).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.errors import BenchkitError, StoreError
from benchkit.report.stats import Summary, summarize
from benchkit.storage.integrity import read_checked
from benchkit.storage.store import RunStore

AXES = ("dataset", "backbone", "level", "aggregator", "predictor")
SWEEP_KEYS = ("train_fraction", "frames")  # numeric label keys a sensitivity figure can sweep
_DAMAGED = "left out of the report; the next `benchkit run` writes it again"  # what happens to a damaged record
PROFILE_KEYS = ("params_M", "trainable_params_M", "gflops", "gmacs", "latency_ms", "throughput", "peak_mem_mb")
ENV_PACKAGES = ("torch", "transformers", "timm")  # the versions a leaderboard names, with the device
ENV_KEYS = (*ENV_PACKAGES, "device")


def environment_summary(env: dict[str, Any], record: dict[str, Any] | None = None) -> dict[str, str]:
    """``{torch, transformers, timm, device}`` as text for one fold: ``environment.json`` of its run, overridden by
    what the fold record itself carries (``record["environment"]`` in the same shape, or its ``device``). Empty when
    nothing was recorded (a run directory written by hand). A package missing from the record is "not recorded";
    one recorded as absent is "not installed"."""
    record = record or {}
    own = record.get("environment") or {}
    if not env and not own:
        return {}
    packages = {**(env.get("packages") or {}), **(own.get("packages") or {})}
    out = {name: (str(packages[name]) if packages[name] else "not installed") if name in packages else "not recorded"
           for name in ENV_PACKAGES}
    if own.get("device"):
        device, name = own["device"], own.get("device_name")
    else:
        device = record.get("device") or env.get("device")
        name = env.get("device_name") if device == env.get("device") else None
    out["device"] = f"{device} ({name})" if name and name != device else str(device or "not recorded")
    return out


@dataclass(frozen=True)
class Source:
    """One run directory a report reads: its name in the report (the folder's name; its path where two share a
    name), where it is, and its ``environment.json`` ({} when absent)."""

    name: str
    root: Path
    store: RunStore
    environment: dict[str, Any]


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
    records: dict[int, dict[str, Any]] = field(default_factory=dict)  # the stored fold records, whole
    runs: dict[int, str] = field(default_factory=dict)  # fold → the run (Source.name) it came from
    environments: dict[int, dict[str, str]] = field(default_factory=dict)  # fold → environment_summary
    config: dict[str, Any] = field(default_factory=dict)  # the resolved configuration (cell.json less id, labels)
    source: str = ""  # the run that planned it (the first, when several did)

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
    sources: list[Source] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return len(self.sources) > 1

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
        summary = read_checked(path, _DAMAGED).get("summary") or {}
    except (StoreError, AttributeError):
        return {}
    return {k: float(v) for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _cell_config(folder: Path) -> dict[str, Any]:
    path = folder / "cell.json"
    if not path.is_file():
        return {}
    try:
        record = read_checked(path, _DAMAGED)
    except StoreError:
        return {}
    return {k: v for k, v in record.items() if k not in ("id", "labels")} if isinstance(record, dict) else {}


def _load(source: Source, key: str, folder: Path, labels: dict, dataset_key: str, baseline: bool,
          folds: int) -> Result:
    store = source.store
    records = {k: r for k in range(folds) if (r := store.load_fold(folder, k)) is not None}
    stored = {k: r["metrics"] for k, r in records.items()}
    return Result(key, folder, dict(labels), dataset_key, baseline, stored, _failed_folds(store, folder, folds, stored),
                  {} if baseline else _profile(folder), records, dict.fromkeys(records, source.name),
                  {k: environment_summary(source.environment, r) for k, r in records.items()},
                  {} if baseline else _cell_config(folder), source.name)


def _shared_sweeps(cells: list[Result], dataset_key: str) -> dict[str, Any]:
    """Sweep values that every cell on a dataset configuration shares (a frame-count sweep builds one dataset per
    value, so each has its own baselines), to label that dataset's baseline rows."""
    same = [c for c in cells if c.dataset_key == dataset_key]
    return {k: same[0].labels[k] for k in SWEEP_KEYS
            if same and all(k in c.labels and c.labels[k] == same[0].labels[k] for c in same)}


def _environment(root: Path) -> dict[str, Any]:
    path = root / "environment.json"
    if not path.is_file():
        return {}
    try:
        env = read_checked(path, _DAMAGED)
    except StoreError:
        return {}
    return env if isinstance(env, dict) else {}


def _load_run(store: RunStore, name: str | None = None) -> RunResults:
    plan = store.plan()
    source = Source(name or store.root.name or str(store.root), store.root, store, _environment(store.root))
    folds = int(plan["folds"])
    cells = [_load(source, c["id"], store.cell_dir(c["id"]), c["labels"], c.get("dataset_key", ""), False, folds)
             for c in plan["cells"]]
    baselines = [
        _load(source, f"{b['name']}-{b['dataset_key']}", store.baseline_dir(b["name"], b["dataset_key"]),
              {**_shared_sweeps(cells, b["dataset_key"]), **b["labels"], "aggregator": b["label"]},
              b["dataset_key"], True, folds)
        for b in plan["baselines"]
    ]
    return RunResults(store.root, store, plan, list(plan["metrics"]), folds, cells, baselines, [source])


def load_results(store: RunStore | str | Path | Sequence[RunStore | str | Path]) -> RunResults:
    """One run directory, or several read as one (``merge_results``)."""
    if isinstance(store, RunStore | str | Path):
        return _load_run(store if isinstance(store, RunStore) else RunStore(store))
    stores = [s if isinstance(s, RunStore) else RunStore(s) for s in store]
    if not stores:
        raise BenchkitError("no run directory given")
    if len(stores) == 1:
        return _load_run(stores[0])
    names = [s.root.name for s in stores]
    runs = [_load_run(s, s.root.name if names.count(s.root.name) == 1 else str(s.root)) for s in stores]
    return merge_results(runs)


# -- merging ------------------------------------------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": leaf}``."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    fa, fb = flatten(a), flatten(b)
    key = next(k for k in [*fa, *(k for k in fb if k not in fa)] if fa.get(k, "unset") != fb.get(k, "unset"))
    return f"{key}: {fa.get(key, 'unset')!r} vs {fb.get(key, 'unset')!r}"


def _environment_text(envs: dict[int, dict[str, str]]) -> str:
    kinds = {tuple(e.get(k, "") for k in ENV_KEYS) for e in envs.values()}
    return "; ".join(f"torch {t}, transformers {tr}, timm {ti} on {d}" for t, tr, ti, d in sorted(kinds))


def _absorb(mine: Result, other: Result, mine_run: str, other_run: str, check_environment: bool) -> None:
    """Add ``other``'s folds (same cell id, another run) to ``mine``, refusing what cannot be one cell."""
    if mine.config and other.config and mine.config != other.config:
        raise BenchkitError(f"cannot merge cell {mine.key}: {mine_run} and {other_run} resolve it to different "
                            f"configurations ({_difference(mine.config, other.config)})")
    if mine.dataset_key != other.dataset_key:
        raise BenchkitError(f"cannot merge cell {mine.key}: {mine_run} and {other_run} put it on different dataset "
                            f"configurations ({mine.dataset_key} vs {other.dataset_key})")
    if check_environment:
        a = {tuple(sorted(e.items())) for e in mine.environments.values() if e}
        b = {tuple(sorted(e.items())) for e in other.environments.values() if e}
        if a and b and a != b:
            raise BenchkitError(f"cannot merge cell {mine.key}: {mine_run} ran it with "
                                f"{_environment_text(mine.environments)}, {other_run} with "
                                f"{_environment_text(other.environments)}")
    for k, record in other.records.items():
        if k not in mine.records:
            mine.records[k], mine.folds[k] = record, other.folds[k]
            mine.runs[k], mine.environments[k] = other.runs[k], other.environments[k]
    mine.records = dict(sorted(mine.records.items()))
    mine.folds = {k: mine.records[k]["metrics"] for k in mine.records}
    mine.failed = sorted({*mine.failed, *other.failed} - set(mine.records))
    mine.profile = mine.profile or other.profile


def _protocol(run: RunResults) -> str:
    p = run.plan.get("protocol") or {}
    return f"{run.folds} folds of {p.get('kind', 'group_kfold')}, seed {p.get('seed', '?')}"


def merge_results(runs: Sequence[RunResults]) -> RunResults:
    """Several runs as one leaderboard's results; see the module docstring for what is refused."""
    first = runs[0]
    name = first.sources[0].name
    metrics = {m["name"]: m for m in first.metrics}
    cells = {c.key: c for c in first.cells}
    baselines = {b.key: b for b in first.baselines}
    owner = {**dict.fromkeys(cells, name), **dict.fromkeys(baselines, name)}
    plan = {**first.plan, "cells": list(first.plan["cells"]), "baselines": list(first.plan["baselines"]),
            "datasets": dict(first.plan.get("datasets") or {})}
    grids = [first.plan["grid"]]
    for run in runs[1:]:
        other = run.sources[0].name
        if run.plan.get("protocol") != first.plan.get("protocol") or run.folds != first.folds:
            raise BenchkitError(f"cannot merge {name} ({_protocol(first)}) and {other} ({_protocol(run)}): "
                                "their folds hold different samples")
        for m in run.metrics:
            if m["name"] in metrics and metrics[m["name"]] != m:
                raise BenchkitError(f"cannot merge {name} and {other}: metric {m['name']!r} is defined differently "
                                    f"({_difference(metrics[m['name']], m)})")
            metrics.setdefault(m["name"], m)
        for mine, theirs, entries, check in ((cells, run.cells, run.plan["cells"], True),
                                             (baselines, run.baselines, run.plan["baselines"], False)):
            for result, entry in zip(theirs, entries, strict=True):
                if result.key in mine:
                    _absorb(mine[result.key], result, owner[result.key], other, check)
                else:
                    mine[result.key], owner[result.key] = result, other
                    plan["cells" if check else "baselines"].append(entry)
        for key, dataset in (run.plan.get("datasets") or {}).items():
            plan["datasets"].setdefault(key, dataset)
        grids.append(run.plan["grid"])
    plan["grid"] = " + ".join(dict.fromkeys(grids))
    plan["metrics"] = list(metrics.values())
    sources = [s for run in runs for s in run.sources]
    return RunResults(first.root, first.store, plan, list(metrics.values()), first.folds, list(cells.values()),
                      list(baselines.values()), sources)
