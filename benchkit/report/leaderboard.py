"""Leaderboards rendered from the store only: one row per cell, metrics as mean ± 95% CI over folds.

The best mean per metric (at the displayed precision, among the cells) is bold; the baseline rows ("Random",
"Majority") come last and are never bold.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from benchkit.errors import BenchkitError
from benchkit.stats import Summary, summarize
from benchkit.store import RunStore, atomic_write_text

FORMATS = ("md", "csv", "latex")
DEFAULT_COLUMNS = ("level", "aggregator", "backbone")
ORDER = ("dataset", "level", "aggregator", "backbone", "predictor")


@dataclass
class Row:
    labels: dict[str, str]
    metrics: dict[str, Summary]
    folds: int
    baseline: bool


@dataclass
class Table:
    title: str
    description: str
    columns: list[str]
    metrics: list[dict]
    rows: list[Row]
    folds: int
    decimals: int


def collect(store: RunStore) -> Table:
    plan = store.plan()
    names = [m["name"] for m in plan["metrics"]]
    folds = plan["folds"]

    def row(folder, labels, baseline) -> Row:
        records = [store.load_fold(folder, k) for k in range(folds)]
        records = [r for r in records if r is not None]
        values = {m: summarize([r["metrics"][m] for r in records if m in r["metrics"]]) for m in names}
        return Row(labels, values, len(records), baseline)

    rows = [row(store.cell_dir(c["id"]), c["labels"], False) for c in plan["cells"]]
    rows += [
        row(store.baseline_dir(b["name"], b["dataset_key"]), {**b["labels"], "aggregator": b["label"]}, True)
        for b in plan["baselines"]
    ]
    columns = plan["report"].get("columns")
    if not columns:
        varying = {a for a in ORDER if len({c["labels"][a] for c in plan["cells"]}) > 1}
        columns = [a for a in ORDER if a in DEFAULT_COLUMNS or a in varying]
    return Table(plan["grid"], plan.get("description", ""), columns, plan["metrics"], rows, folds,
                 plan["report"].get("decimals", 2))


def _best(table: Table) -> dict[str, float]:
    best = {}
    for m in table.metrics:
        values = [round(r.metrics[m["name"]].mean, table.decimals) for r in table.rows
                  if not r.baseline and not math.isnan(r.metrics[m["name"]].mean)]
        if values:
            best[m["name"]] = max(values) if m["higher_is_better"] else min(values)
    return best


def _fmt(s: Summary, decimals: int, plus_minus: str) -> str:
    if s.n == 0:
        return "–"
    text = f"{s.mean:.{decimals}f}"
    if not math.isnan(s.half_width):
        text += f"{plus_minus}{s.half_width:.{decimals}f}"
    return text


def _cells(table: Table, row: Row, best: dict[str, float], plus_minus: str, bold: tuple[str, str]) -> list[str]:
    out = []
    for m in table.metrics:
        s = row.metrics[m["name"]]
        text = _fmt(s, table.decimals, plus_minus)
        if not row.baseline and s.n and round(s.mean, table.decimals) == best.get(m["name"]):
            text = f"{bold[0]}{text}{bold[1]}"
        out.append(text)
    return out


def _label(row: Row, column: str) -> str:
    if row.baseline:
        return row.labels["aggregator"] if column == "aggregator" else ""
    return row.labels.get(column, "")


def _incomplete(table: Table) -> bool:
    return any(r.folds < table.folds for r in table.rows)


def render(table: Table, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise BenchkitError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    metric_names = [m["name"] for m in table.metrics]
    folds_col = _incomplete(table)
    best = _best(table)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        stats = [f"{m}_{p}" for m in metric_names for p in ("mean", "ci95")]
        writer.writerow([*table.columns, "baseline", "folds", *stats])
        for r in table.rows:
            vals = [v for m in metric_names for v in (r.metrics[m].mean, r.metrics[m].half_width)]
            writer.writerow([*(_label(r, c) for c in table.columns), int(r.baseline), r.folds,
                             *("" if math.isnan(v) else f"{v:.6g}" for v in vals)])
        return buf.getvalue()
    header = [c.capitalize() for c in table.columns] + [
        f"{m['name']}{' ↑' if m['higher_is_better'] else ' ↓'}" for m in table.metrics
    ]
    if folds_col:
        header.append("Folds")
    if fmt == "md":
        lines = [
            f"**{table.title}**: mean ± 95% CI over {table.folds} folds (t-distribution, ddof 1). "
            "**Bold**: best per metric.",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * len(table.columns) + ["---:"] * (len(header) - len(table.columns))) + "|",
        ]
        for r in table.rows:
            labels = [_label(r, c).replace("|", "\\|") for c in table.columns]
            cells = labels + _cells(table, r, best, " ± ", ("**", "**"))
            if folds_col:
                cells.append(f"{r.folds}/{table.folds}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    # latex
    def esc(text: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
            text = text.replace(a, b)
        return text

    lines = [
        r"\begin{tabular}{" + "l" * len(table.columns) + "r" * (len(header) - len(table.columns)) + "}",
        r"\toprule",
        " & ".join(esc(h).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$") for h in header) + r" \\",
        r"\midrule",
    ]
    for i, r in enumerate(table.rows):
        if r.baseline and (i == 0 or not table.rows[i - 1].baseline):
            lines.append(r"\midrule")
        cells = [esc(_label(r, c)) for c in table.columns] + _cells(table, r, best, r" $\pm$ ", (r"\textbf{", "}"))
        if folds_col:
            cells.append(f"{r.folds}/{table.folds}")
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_leaderboard(store: RunStore) -> str:
    text = render(collect(store), "md")
    atomic_write_text(store.root / "leaderboard.md", text)
    return text
