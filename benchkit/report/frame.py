"""A run's results as one tidy pandas DataFrame: ``benchkit.load_results(run_dir)``.

One row per cell × fold × metric, baselines included (``baseline`` is True, ``aggregator`` holds their name:
"Random", "Majority"). Every planned fold has its rows: ``status`` says whether it is ``stored``, ``failed`` (an
error record) or ``pending`` (not run yet), and ``value`` is NaN unless it is stored and scored. Columns, in order:

- ``run`` (the run directory the fold came from), ``cell`` (its id; a baseline's ``<name>-<dataset key>``),
  ``baseline``, ``dataset_key``;
- every label (``dataset``, ``backbone``, ``level``, ``aggregator``, ``predictor``, sweep values such as
  ``train_fraction`` or ``frames``; numbers stay numbers);
- ``fold``, ``status``, ``seed``, ``metric``, ``value``, ``higher_is_better``;
- ``selected.<key>`` (``selected.train.lr``, ``selected.aggregator.hidden_size``): the value hyper-parameter
  selection kept in that fold (the fold record's ``selection.values``; every candidate's validation score is in
  ``benchkit.report.selection``); missing where a fold has none. Only a run with selection records has them, so a
  run without selection reads exactly as before;
- timings and sizes from the fold record: ``train_seconds``, ``eval_seconds``, ``n_train``, ``n_test``,
  ``trainable_params``, ``attempts``, ``device``, ``host``;
- ``env.torch``, ``env.transformers``, ``env.timm``, ``env.device``: what produced the fold (environment.json);
- profile columns (``params_M``, ``gflops``, ``latency_ms``, ... from ``profile.json``), where a cell has them;
- ``config.<key>``: the resolved configuration, flattened with dots (``config.train.lr``); lists as JSON text.

``frame.attrs`` holds ``labels``, ``metrics`` (the metric records), ``folds`` and ``runs``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit.report.results import AXES, ENV_KEYS, PROFILE_KEYS, RunResults, flatten
from benchkit.report.results import load_results as _load_run_results
from benchkit.storage.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

RECORD_COLUMNS = ("train_seconds", "eval_seconds", "n_train", "n_test", "trainable_params", "attempts", "device",
                  "host")
STATUSES = ("stored", "failed", "pending")
SELECTED = "selected."  # prefix of the columns of selected hyper-parameter values


def _scalar(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, list | tuple | dict) else value


def label_keys(results: RunResults) -> list[str]:
    """The label columns: the axes, then every other label key in first-seen order (sweeps)."""
    every = [*results.cells, *results.baselines]
    return list(dict.fromkeys([*AXES, *(k for r in every for k in r.labels)]))


def results_frame(results: RunResults) -> pd.DataFrame:
    """The tidy frame of loaded results (see the module docstring)."""
    import pandas as pd

    labels = label_keys(results)
    names = [m["name"] for m in results.metrics]
    higher = {m["name"]: bool(m.get("higher_is_better", True)) for m in results.metrics}
    rows: list[dict[str, Any]] = []
    config_keys: dict[str, None] = {}
    selected_keys: dict[str, None] = {}
    for r in [*results.cells, *results.baselines]:
        config = {f"config.{k}": _scalar(v) for k, v in flatten(r.config).items()} if r.config else {}
        config_keys.update(dict.fromkeys(config))
        for k in range(results.folds):
            record = r.records.get(k)
            status = "stored" if record is not None else "failed" if k in r.failed else "pending"
            record = record or {}
            env = r.environments.get(k) or {}
            picked = (record.get("selection") or {}).get("values") or {}
            chosen = {f"{SELECTED}{key}": _scalar(v) for key, v in picked.items()}
            selected_keys.update(dict.fromkeys(chosen))
            base = {
                "run": r.runs.get(k, r.source), "cell": r.key, "baseline": r.baseline, "dataset_key": r.dataset_key,
                **{key: r.labels.get(key) for key in labels},
                "fold": k, "status": status, "seed": record.get("seed"),
            }
            extra = {
                **{c: record.get(c) for c in RECORD_COLUMNS},
                **{f"env.{key}": env.get(key) for key in ENV_KEYS},
                **{key: r.profile.get(key, math.nan) for key in PROFILE_KEYS},
                **config,
            }
            for name in names:
                value = (record.get("metrics") or {}).get(name)
                rows.append({**base, "metric": name, "value": math.nan if value is None else float(value),
                             "higher_is_better": higher[name], **chosen, **extra})
    columns = ["run", "cell", "baseline", "dataset_key", *labels, "fold", "status", "seed", "metric", "value",
               "higher_is_better", *selected_keys, *RECORD_COLUMNS, *(f"env.{k}" for k in ENV_KEYS), *PROFILE_KEYS,
               *config_keys]
    frame = pd.DataFrame(rows, columns=columns)
    for c in frame.columns:  # integers (seeds, counts, sweep values) stay integers next to missing values
        if frame[c].dtype.kind == "f" and frame[c].isna().any():
            found = [v for row in rows if (v := row.get(c)) is not None and v == v]
            if found and all(type(v) is int for v in found):
                frame[c] = frame[c].astype("Int64")
    present = [k for k in PROFILE_KEYS if frame[k].notna().any()]
    frame = frame.drop(columns=[k for k in PROFILE_KEYS if k not in present])
    frame.attrs.update(labels=labels, metrics=list(results.metrics), folds=results.folds,
                       runs=[str(s.root) for s in results.sources])
    return frame


def load_results(run_dir: str | Path | RunStore | Sequence[str | Path | RunStore], *more: str | Path) -> pd.DataFrame:
    """The tidy results of a run directory, or of several read as one (``load_results(a, b)`` or ``[a, b]``)."""
    dirs = [*run_dir, *more] if isinstance(run_dir, list | tuple) else [run_dir, *more]
    return results_frame(_load_run_results(dirs if len(dirs) > 1 else dirs[0]))
