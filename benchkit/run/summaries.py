"""A cell's summary over its stored folds (mean ± 95% CI per metric), as loggers receive it."""

from __future__ import annotations

from typing import Any

from benchkit.grid.plan import PlannedCell
from benchkit.report.stats import summarize
from benchkit.storage.store import RunStore


def cell_summary(store: RunStore, pc: PlannedCell, n_splits: int) -> dict[str, Any]:
    records = [store.load_fold(store.cell_dir(pc.id), k) for k in range(n_splits)]
    records = [r for r in records if r]
    names = records[0]["metrics"] if records else {}
    return {
        "labels": pc.cell.labels(),
        "metrics": {m: vars(summarize([r["metrics"][m] for r in records])) for m in names},
        "folds": len(records),
        "failed": n_splits - len(records),
    }


def short_label(pc: PlannedCell) -> str:
    """A cell in one line of progress: level/aggregator and its sweep values."""
    sweep = "".join(f" {k}={v:g}" for k, v in pc.cell.labels().items() if k in pc.cell.grid.sweep.axes())
    return f"{pc.cell.level}/{pc.cell.aggregator.display}{sweep}"
