"""Hyper-parameter selection as a report shows it: every candidate's validation score per cell, over the folds.

A cell with candidates (``{select: [...]}``, docs/grid.md) picks one inside each training fold on an inner
validation split, and its fold records keep every candidate's score (``selection`` in fold-<k>.json,
benchkit/run/selection.py). The leaderboard's ``lr*`` columns say what was kept; this module says how close the
other candidates came, i.e. how sensitive a cell is to the choice: ``selection.md`` (per cell and candidate, the
validation score as mean ± standard deviation over the folds, and how many folds kept it) and the data of the
``selection`` figure (benchkit/report/figures.py). The spread is a standard deviation, not the leaderboard's 95% CI:
it describes how the score varies between folds, not how well its mean is known. A run without selection records
has neither.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchkit.report.leaderboard import STYLES, Table, format_summary, header, label_text, markdown_table
from benchkit.report.results import Result, RunResults
from benchkit.report.stats import Summary

SELECTION_MD = "selection.md"


def spread(values: Sequence[float]) -> Summary:
    """Mean ± standard deviation (ddof 1) as a ``Summary``, whose ``half_width`` here holds the standard deviation
    (NaN for one value), so that the leaderboard's formatting and the figures' error bars apply as they are."""
    if not values:
        return Summary(math.nan, math.nan, 0)
    return Summary(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan, len(values))


@dataclass
class Candidate:
    """One candidate of a cell over its folds: its values, the validation score of each fold that scored it, the
    folds in which it diverged (no score) and the folds that kept it."""

    values: dict[str, Any]
    scores: list[float] = field(default_factory=list)
    diverged: int = 0
    selected: int = 0

    def label(self, keys: Sequence[str], sep: str = ", ") -> str:
        """``train.lr=0.003, aggregator.hidden_size=32``; the bare value when ``keys`` is one key."""
        if len(keys) == 1:
            return label_text(self.values.get(keys[0]))
        return sep.join(f"{k}={label_text(self.values[k])}" for k in keys if k in self.values)


@dataclass
class CellSelection:
    """A cell's selection over its stored folds that have a selection record (``folds`` of them)."""

    cell: Result
    metric: str
    higher_is_better: bool
    folds: int
    candidates: list[Candidate]
    sources: list[str]  # where validation came from ("0.2 of the training part's groups")
    refit: bool

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for c in self.candidates for k in c.values))


def cell_selections(results: RunResults) -> list[CellSelection]:
    """The cells with selection records, in the plan's order; candidates in the order the grid lists them."""
    out = []
    for cell in results.cells:
        records = [r["selection"] for _, r in sorted(cell.records.items()) if r.get("selection")]
        if not records:
            continue
        candidates: dict[str, Candidate] = {}
        for record in records:
            for i, row in enumerate(record.get("candidates") or []):
                values = row.get("values") or {}
                candidate = candidates.setdefault(json.dumps(values, sort_keys=True, default=str), Candidate(values))
                score = (row.get("validation") or {}).get(record["metric"])
                if score is not None and math.isfinite(score):
                    candidate.scores.append(float(score))
                candidate.diverged += bool(row.get("diverged"))
                candidate.selected += i == record.get("selected")
        sources = list(dict.fromkeys(str((r.get("validation") or {}).get("source", "")) for r in records))
        out.append(CellSelection(cell, records[0]["metric"], bool(records[0].get("higher_is_better", True)),
                                 len(records), list(candidates.values()), [s for s in sources if s],
                                 any(r.get("refit") for r in records)))
    return out


def _arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def selection_markdown(results: RunResults, table: Table) -> str:
    """``selection.md``: one row per cell and candidate, the cells labelled and ordered as in the leaderboard
    ``table`` (a cell's labels on its first candidate only); empty when the run has no selection records."""
    selections = cell_selections(results)
    if not selections:
        return ""
    rows = {r.key: r for r in table.rows}
    order = {key: i for i, key in enumerate(rows)}
    selections.sort(key=lambda s: order.get(s.cell.key, len(order)))
    keys = list(dict.fromkeys(k for s in selections for k in s.keys))
    metrics = list(dict.fromkeys((s.metric, s.higher_is_better) for s in selections))
    diverged = any(c.diverged for s in selections for c in s.candidates)
    columns = list(table.columns)
    heads = [header(c) for c in columns] + (["Metric"] if len(metrics) > 1 else []) + keys
    score = f"validation {metrics[0][0]} {_arrow(metrics[0][1])}" if len(metrics) == 1 else "validation"
    heads += [score, "Selected", *(["Diverged"] if diverged else [])]
    escape = STYLES["md"].escape
    body = []
    for s in selections:
        labels = rows[s.cell.key].labels if s.cell.key in rows else {k: s.cell.label(k) for k in columns}
        for i, c in enumerate(s.candidates):
            texts = [labels.get(k, "") if not i else "" for k in columns]
            texts += [f"{s.metric} {_arrow(s.higher_is_better)}"] if len(metrics) > 1 else []
            texts += [label_text(c.values[k]) if k in c.values else "" for k in keys]
            body.append([escape(t) for t in texts] + [format_summary(spread(c.scores), table.decimals),
                                                       f"{c.selected}/{s.folds}",
                                                       *([str(c.diverged)] if diverged else [])])
    sources = list(dict.fromkeys(src for s in selections for src in s.sources))
    refit = any(s.refit for s in selections)
    caption = (f"**{table.title}: hyper-parameter selection**. Each candidate's validation score "
               f"({' / '.join(m for m, _ in metrics)}), mean ± standard deviation (ddof 1) over the folds, on "
               f"{' / '.join(sources) or 'an inner validation split'} inside each training fold (the test fold never "
               "takes part). Selected: the folds that kept the candidate (a tie goes to the one listed first)"
               + ("; the kept candidate was then retrained on the whole training part" if refit else "")
               + (". Diverged: folds in which the candidate's training diverged (no score)" if diverged else "")
               + ". The leaderboard's starred columns name the values kept.")
    labels = len(columns) + (len(metrics) > 1)
    return f"{caption}\n\n{markdown_table(heads, body, labels)}\n"
