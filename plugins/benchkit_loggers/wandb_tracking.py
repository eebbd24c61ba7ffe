"""``loggers.wandb``: each finished cell as a Weights & Biases run, offline unless told otherwise.

Configured like ``loggers.jsonl``, by the environment: it logs only when ``BENCHKIT_WANDB`` names the W&B project.
The mode is ``WANDB_MODE`` (default here: ``offline``, so nothing leaves the machine; ``wandb sync RUN_DIR/wandb``
uploads later), the runs are written under ``RUN_DIR/wandb``. Needs the ``wandb`` package
(``pip install 'benchkit[wandb]'``), imported only when a cell finishes with the variable set.

W&B has no nested runs; its equivalent is the **group**: every cell of one run directory is a run in the group
``<grid>-<run key>`` (job type ``cell``), with the resolved configuration and the labels as its config (flattened:
``train.lr``, ``label.aggregator``), every metric per fold (``step`` = fold index, with ``train_seconds`` and
``eval_seconds``), the mean and 95% CI half width (``accuracy_mean``, ``accuracy_ci95``), ``folds`` and
``failed_folds`` in its summary, and two artifacts: ``folds-<cell id>`` (the fold records and ``cell.json``) and
``leaderboard-<run key>`` (the leaderboard as it stands after the cell: a new version per cell).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from benchkit.api import StoreError, flatten, hookimpl, read_record

ENV = "BENCHKIT_WANDB"




def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@hookimpl
def benchkit_cell_finished(cell: dict[str, Any], summary: dict[str, Any], run_dir: str) -> None:
    project = os.environ.get(ENV)
    if not project:
        return
    try:
        import wandb
    except ImportError:
        raise StoreError(f"loggers.wandb: {ENV} is set but wandb is not installed; "
                         "pip install 'benchkit[wandb]' or unset it") from None
    from benchkit.api import leaderboard

    root = Path(run_dir).resolve()
    key = hashlib.sha1(str(root).encode()).hexdigest()[:16]
    grid = str(read_record(root / "plan.json").get("grid") or root.name)
    labels = summary.get("labels") or {}
    folder = root / "cells" / cell["id"]
    name = " / ".join(str(labels[k]) for k in ("level", "aggregator", "backbone") if labels.get(k)) or cell["id"]
    config = {**flatten({k: v for k, v in cell.items() if k != "id"}), **{f"label.{k}": v for k, v in labels.items()},
              "benchkit.cell": cell["id"], "benchkit.run_dir": str(root)}
    try:
        run = wandb.init(project=project, group=f"{grid}-{key}", job_type="cell", name=name, config=config,
                         dir=str(root), mode=os.environ.get("WANDB_MODE") or "offline", reinit="create_new",
                         settings=wandb.Settings(silent=True, console="off", save_code=False))
        with run:
            folds = wandb.Artifact(f"folds-{cell['id']}", type="folds")
            for path in sorted(folder.glob("fold-*.json")):
                if not re.fullmatch(r"fold-\d+\.json", path.name):
                    continue
                record = read_record(path)
                values = {**(record.get("metrics") or {}),
                          **{k: record[k] for k in ("train_seconds", "eval_seconds") if k in record}}
                run.log({k: v for k, v in values.items() if _finite(v)}, step=int(record.get("fold", 0)))
                folds.add_file(str(path), name=path.name)
            if (folder / "cell.json").is_file():
                folds.add_file(str(folder / "cell.json"), name="cell.json")
            for metric, s in (summary.get("metrics") or {}).items():
                for suffix, field in (("mean", "mean"), ("ci95", "half_width")):
                    if _finite(s.get(field)):
                        run.summary[f"{metric}_{suffix}"] = s[field]
            run.summary["folds"], run.summary["failed_folds"] = summary.get("folds", 0), summary.get("failed", 0)
            run.log_artifact(folds)
            with tempfile.TemporaryDirectory() as tmp:
                board = wandb.Artifact(f"leaderboard-{key}", type="leaderboard")
                (Path(tmp) / "leaderboard.md").write_text(leaderboard(root, "md"))
                board.add_file(str(Path(tmp) / "leaderboard.md"), name="leaderboard.md")
                run.log_artifact(board)
    except (wandb.Error, OSError) as e:
        message = " ".join(str(e).split())[:300]
        raise StoreError(f"loggers.wandb: cannot log project {project!r}: {message}") from e
