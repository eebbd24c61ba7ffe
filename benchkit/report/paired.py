"""Paired comparison of two cells scored on the same folds: per metric, the mean difference ``A - B`` ± 95% CI over
the folds both have, and a two-sided paired t-test (``benchkit.report.stats.paired_comparison``).

Cells (or baselines) are named by id prefix or by ``KEY=PATTERN[,KEY=PATTERN]`` on their labels. Both must be on
the same dataset configuration: otherwise fold ``k`` does not hold the same test samples and nothing is paired.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.report.leaderboard import STYLES, latex_escape, markdown_table
from benchkit.report.results import Result, RunResults
from benchkit.report.stats import Paired, paired_comparison

SIGNIFICANCE = 0.05
TITLE = "Paired comparisons"
CAPTION = (" on the folds both cells have: mean difference A − B ± 95% CI (t-distribution, ddof 1) and a two-sided "
           f"paired t-test; n: shared folds; p < {SIGNIFICANCE:g} in bold.")
HEADERS = ("A", "B", "Metric", "A mean", "B mean", "A − B", "t", "p", "n")


@dataclass(frozen=True)
class Comparison:
    a: Result
    b: Result
    metric: dict
    mean_a: float  # over the shared folds
    mean_b: float
    paired: Paired

    @property
    def significant(self) -> bool:
        return not math.isnan(self.paired.p) and self.paired.p < SIGNIFICANCE


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def compare(results: RunResults, a: str, b: str) -> list[Comparison]:
    """One comparison per metric of the cells selected by ``a`` and ``b``."""
    cell_a, cell_b = results.find(a), results.find(b)
    if cell_a.key == cell_b.key:
        raise BenchkitError(f"--compare {a!r} {b!r}: both name the same cell {cell_a.key}")
    if cell_a.dataset_key != cell_b.dataset_key:
        raise BenchkitError(f"--compare {a!r} {b!r}: the cells are on different dataset configurations, so their "
                            "folds hold different test samples and cannot be paired")
    out = []
    for m in results.metrics:
        va, vb = cell_a.values(m["name"]), cell_b.values(m["name"])
        shared = [k for k in va if k in vb]
        out.append(Comparison(cell_a, cell_b, m, _mean([va[k] for k in shared]), _mean([vb[k] for k in shared]),
                              paired_comparison(va, vb)))
    return out


def _name(r: Result) -> str:
    return f"{r.name()} ({r.key})"


def _num(value: float, decimals: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{decimals}f}"


def _p(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"


def _texts(c: Comparison, decimals: int, fmt: str) -> list[str]:
    style = STYLES[fmt]
    diff = _num(c.paired.mean_diff, decimals)
    if not math.isnan(c.paired.half_width):
        diff += f"{style.plus_minus}{c.paired.half_width:.{decimals}f}"
    p = _p(c.paired.p)
    if c.significant:
        p = f"{style.bold[0]}{p}{style.bold[1]}"
    t = "–" if math.isnan(c.paired.t) else f"{c.paired.t:.3g}"
    labels = [style.escape(_name(c.a)), style.escape(_name(c.b)), style.escape(c.metric["name"])]
    return [*labels, _num(c.mean_a, decimals), _num(c.mean_b, decimals), diff, t, p, str(c.paired.n)]


def render_comparisons(comparisons: list[Comparison], fmt: str = "md", decimals: int = 2) -> str:
    """The comparisons as one table: ``md``, ``latex`` (booktabs), ``html`` (a fragment) or ``csv`` (raw)."""
    if not comparisons:
        return ""
    if fmt == "csv":
        return pd.DataFrame([
            {"a": c.a.key, "b": c.b.key, "metric": c.metric["name"], "a_mean": c.mean_a, "b_mean": c.mean_b,
             "diff_mean": c.paired.mean_diff, "diff_ci95": c.paired.half_width, "t": c.paired.t, "p": c.paired.p,
             "n": c.paired.n} for c in comparisons
        ]).to_csv(index=False, float_format="%.6g", lineterminator="\n")
    rows = [_texts(c, decimals, fmt) for c in comparisons]
    if fmt == "md":
        return f"**{TITLE}**{CAPTION}\n\n{markdown_table(list(HEADERS), rows, 3)}\n"
    if fmt == "latex":
        heads = [latex_escape(h).replace("−", "$-$") for h in HEADERS]
        lines = ["% " + TITLE + CAPTION, r"\begin{tabular}{lllrrrrrr}", r"\toprule", " & ".join(heads) + r" \\",
                 r"\midrule"]
        lines += [" & ".join(r) + r" \\" for r in rows]
        return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"]) + "\n"
    if fmt == "html":
        head = "".join(f"<th{' class=num' if i > 2 else ''}>{html.escape(h)}</th>" for i, h in enumerate(HEADERS))
        body = ["<tr>" + "".join(f"<td{' class=num' if i > 2 else ''}>{t}</td>" for i, t in enumerate(r)) + "</tr>"
                for r in rows]
        return "\n".join(['<table class="paired">', f"<caption>{html.escape(TITLE + CAPTION)}</caption>",
                          f"<thead><tr>{head}</tr></thead>", "<tbody>", *body, "</tbody>", "</table>"]) + "\n"
    raise BenchkitError(f"unknown report format {fmt!r} for comparisons")
