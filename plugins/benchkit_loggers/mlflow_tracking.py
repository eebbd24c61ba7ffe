"""``loggers.mlflow``: each finished cell as an MLflow run, nested under one parent run per grid run.

Configured like ``loggers.jsonl``, by the environment, so a grid needs no key for it: it logs only when
``BENCHKIT_MLFLOW`` names a tracking URI (``sqlite:///runs/mlflow.db``, a server's ``http://host:5000``, or any URI
MLflow takes); ``BENCHKIT_MLFLOW_EXPERIMENT`` names the experiment (default: the grid's name). Needs the ``mlflow``
package (``pip install 'benchkit[mlflow]'``); it is imported only when a cell finishes with the variable set.

- The **parent run** (one per run directory, found again by its ``benchkit.run_key`` tag when the run resumes) is
  tagged with the grid and the environment (torch, transformers, timm, device) and holds the leaderboard as it
  stands after each cell (``leaderboard.md``, ``leaderboard.csv``) and ``environment.json``.
- A **cell run** (``mlflow.parentRunId`` = the parent; found again by its ``benchkit.cell`` tag) has the resolved
  configuration as params (flattened: ``train.lr``), the labels as tags (``label.aggregator``), every metric per
  fold (``step`` = fold index, with ``train_seconds`` and ``eval_seconds``), the mean and 95% CI half width over the
  folds (``accuracy_mean``, ``accuracy_ci95``), ``folds`` and ``failed_folds``, and the fold records and
  ``cell.json`` as artifacts (``folds/``).

With a SQLite store, a new experiment keeps its artifacts next to the database (``mlartifacts/<experiment>``), not in
the working directory. Anything MLflow refuses stops the run as one line naming the URI (stored folds are kept).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit.api import StoreError, flatten, hookimpl, read_record

ENV = "BENCHKIT_MLFLOW"
ENV_EXPERIMENT = "BENCHKIT_MLFLOW_EXPERIMENT"
PARENT_ID = "mlflow.parentRunId"
MAX_PARAM = 6000  # MLflow's limit on a param value
_parents: dict[tuple[str, str], str] = {}  # (tracking URI, run key) → parent run id, for this process


def tracking_uri() -> str | None:
    return os.environ.get(ENV) or None


def _name(key: str) -> str:
    """A metric/param name MLflow accepts (letters, digits, ``_ - . / space``)."""
    return re.sub(r"[^\w\-./ ]", "_", key)



def _text(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list | tuple) else str(value)
    return text[:MAX_PARAM]



def _experiment(client, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # next to the database, not in whatever the working directory is
        database = Path(uri[len("sqlite:///"):]).resolve()
        location = (database.parent / "mlartifacts" / re.sub(r"[^\w.-]", "_", name)).as_uri()
    return client.create_experiment(name, artifact_location=location)


def _find(client, experiment_id: str, tags: dict[str, str]):
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    return found[0].info.run_id if found else None


def _parent(client, experiment_id: str, run_dir: Path, uri: str) -> str:
    key = hashlib.sha1(str(run_dir).encode()).hexdigest()[:16]
    if (uri, key) in _parents:
        return _parents[(uri, key)]
    run_id = _find(client, experiment_id, {"benchkit.run_key": key, "benchkit.kind": "grid"})
    if run_id is None:
        plan, env = read_record(run_dir / "plan.json"), read_record(run_dir / "environment.json")
        packages = env.get("packages") or {}
        tags = {"benchkit.run_key": key, "benchkit.kind": "grid", "benchkit.run_dir": str(run_dir),
                "benchkit.grid": str(plan.get("grid", "")),
                **{f"env.{p}": str(packages.get(p)) for p in ("torch", "transformers", "timm") if p in packages},
                **({"env.device": f"{env.get('device')} ({env.get('device_name')})"} if env.get("device") else {})}
        run_id = client.create_run(experiment_id, run_name=str(plan.get("grid") or run_dir.name), tags=tags
                                   ).info.run_id
        if (run_dir / "environment.json").is_file():
            client.log_artifact(run_id, str(run_dir / "environment.json"))
    _parents[(uri, key)] = run_id
    return run_id


def _log_cell(client, experiment_id: str, parent: str, cell: dict[str, Any], summary: dict[str, Any],
              run_dir: Path) -> str:
    from mlflow.entities import Metric, Param

    labels = summary.get("labels") or {}
    run_id = _find(client, experiment_id, {PARENT_ID: parent, "benchkit.cell": cell["id"]})
    if run_id is None:
        name = " / ".join(str(labels[k]) for k in ("level", "aggregator", "backbone") if labels.get(k)) or cell["id"]
        tags = {PARENT_ID: parent, "benchkit.cell": cell["id"], "benchkit.kind": "cell",
                **{f"label.{_name(k)}": _text(v) for k, v in labels.items()}}
        run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        params = [Param(_name(k), _text(v)) for k, v in flatten({k: v for k, v in cell.items() if k != "id"}).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            client.log_batch(run_id, params=params[i:i + 100])
    now = int(time.time() * 1000)
    folder = run_dir / "cells" / cell["id"]
    metrics = []
    for path in sorted(folder.glob("fold-*.json")):
        if not re.fullmatch(r"fold-\d+\.json", path.name):
            continue
        record = read_record(path)
        fold = int(record.get("fold", path.stem.split("-")[1]))
        values = {**(record.get("metrics") or {}),
                  **{k: record[k] for k in ("train_seconds", "eval_seconds") if k in record}}
        metrics += [Metric(_name(k), float(v), now, fold) for k, v in values.items()
                    if isinstance(v, int | float) and math.isfinite(v)]
        client.log_artifact(run_id, str(path), "folds")
    for name, s in (summary.get("metrics") or {}).items():
        for suffix, key in (("mean", "mean"), ("ci95", "half_width")):
            value = s.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                metrics.append(Metric(_name(f"{name}_{suffix}"), float(value), now, 0))
    metrics += [Metric("folds", float(summary.get("folds") or 0), now, 0),
                Metric("failed_folds", float(summary.get("failed") or 0), now, 0)]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])
    if (folder / "cell.json").is_file():
        client.log_artifact(run_id, str(folder / "cell.json"), "folds")
    client.set_terminated(run_id, "FAILED" if summary.get("failed") else "FINISHED")
    return run_id


def _log_leaderboard(client, parent: str, run_dir: Path) -> None:
    from benchkit.api import leaderboard

    with tempfile.TemporaryDirectory() as tmp:
        for fmt, name in (("md", "leaderboard.md"), ("csv", "leaderboard.csv")):
            path = Path(tmp) / name
            path.write_text(leaderboard(run_dir, fmt))
            client.log_artifact(parent, str(path))


@hookimpl
def benchkit_cell_finished(cell: dict[str, Any], summary: dict[str, Any], run_dir: str) -> None:
    uri = tracking_uri()
    if uri is None:
        return
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise StoreError(f"loggers.mlflow: {ENV} is set but mlflow is not installed; "
                         "pip install 'benchkit[mlflow]' or unset it") from None
    root = Path(run_dir).resolve()
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment = os.environ.get(ENV_EXPERIMENT) or str(read_record(root / "plan.json").get("grid") or root.name)
        experiment_id = _experiment(client, experiment, uri)
        parent = _parent(client, experiment_id, root, uri)
        _log_cell(client, experiment_id, parent, cell, summary, root)
        _log_leaderboard(client, parent, root)
        client.set_terminated(parent, "FINISHED")  # its end time: the last cell logged so far
    except (MlflowException, OSError) as e:
        message = " ".join(str(e).split())[:300]
        raise StoreError(f"loggers.mlflow: cannot log to {uri}: {message}") from e
