"""Leaderboards like the papers' tables (InvPatch Tables I-II), rendered from the store only.

Cells are grouped by a group column (default: backbone) and ordered within a group by row keys (default: embedding
level, then aggregator), each in the order the grid lists it. Metrics are mean ± 95% CI over folds (t-distribution,
ddof 1). Per metric, the best mean at the displayed precision within a group is bold; when there is more than one
group, the best overall is bold and underlined. Only cells with every fold stored are marked; incomplete cells show
``stored/planned`` folds and how many failed. Baselines ("Random", "Majority") come last and are never marked. Each
dataset is a section of its own (groups, bests and baselines); CSV keeps them in one file with a dataset column.

Formats: Markdown, CSV (raw numbers), LaTeX (booktabs), HTML (a ``<table>`` fragment for the HTML report). Extra
columns come from the cells' profiling summaries (``profile.json``: params, GFLOPs, latency, ...). A run with
hyper-parameter selection gets one column per selected key before the metrics (``lr*``: the value kept in every
fold, else the most common one and its share, ``0.001 (2/3)``), so a score is read next to what produced it; a run
without selection has no such column.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tabulate import DataRow, TableFormat, tabulate

from benchkit.errors import BenchkitError
from benchkit.grid.selection import short_key
from benchkit.report.frame import SELECTED, STATUSES, results_frame
from benchkit.report.results import AXES, ENV_KEYS, PROFILE_KEYS, RunResults, load_results
from benchkit.report.stats import Summary, summarize
from benchkit.storage.store import RunStore, atomic_write_text

FORMATS = ("md", "csv", "latex", "html")
DEFAULT_GROUP_BY = "backbone"
DEFAULT_ROWS = ("level", "aggregator")
NO_GROUP = ("", "none")
BEST, OVERALL = "best", "overall"
PROFILE_HEADERS = {
    "params_M": "Params (M)", "trainable_params_M": "Trainable (M)", "gflops": "GFLOPs", "gmacs": "GMACs",
    "latency_ms": "Latency (ms)", "throughput": "Throughput (/s)", "peak_mem_mb": "Peak mem (MB)",
}


@dataclass
class Row:
    labels: dict[str, str]
    metrics: dict[str, Summary]
    folds: int
    baseline: bool
    failed: int = 0
    profile: dict[str, float] = field(default_factory=dict)
    key: str = ""
    group: str = ""
    section: str = ""
    selected: dict[str, str] = field(default_factory=dict)  # selected key -> selected_text over the stored folds


@dataclass
class Table:
    title: str
    description: str
    columns: list[str]
    metrics: list[dict]
    rows: list[Row]
    folds: int
    decimals: int
    group_by: str | None = DEFAULT_GROUP_BY
    row_keys: list[str] = field(default_factory=lambda: list(DEFAULT_ROWS))
    profile_columns: list[str] = field(default_factory=list)
    splits: str = "folds"
    environment: dict[str, dict[str, int]] = field(default_factory=dict)  # see environment_note
    selected: list[str] = field(default_factory=list)  # keys hyper-parameter selection chose (``train.lr``)

    def sections(self) -> list[tuple[str, list[Row]]]:
        out: dict[str, list[Row]] = {}
        for r in self.rows:
            out.setdefault(r.section, []).append(r)
        return list(out.items())

    @property
    def incomplete(self) -> bool:
        return any(r.folds < self.folds for r in self.rows)


# -- collecting ---------------------------------------------------------------------------------------------------


def _first_seen(values: list[str]) -> dict[str, int]:
    order: dict[str, int] = {}
    for v in values:
        order.setdefault(v, len(order))
    return order


def _unique(keys) -> list[str]:
    return list(dict.fromkeys(keys))


def label_text(value: Any) -> str:
    """A label as text (``Result.label``'s rule, for frame values): numbers as the grid writes them, 0.5, 16."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return f"{value:g}"
    return str(value)


def selected_text(values: Sequence[Any]) -> str:
    """What selection kept over a cell's folds: the value when every fold agrees (``0.001``), else the most common
    one (the first such on a tie) and its share, ``0.001 (2/3)``; empty when no fold has one."""
    values = [v for v in values if not pd.isna(v)]
    if not values:
        return ""
    ((top, n),) = Counter(values).most_common(1)
    return label_text(top) if n == len(values) else f"{label_text(top)} ({n}/{len(values)})"


def _environment(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{torch|transformers|timm|device: {text: stored folds}}`` over the cells' stored folds; {} when no fold has
    an environment recorded."""
    folds = frame[(frame["status"] == "stored") & ~frame["baseline"]].drop_duplicates(["cell", "fold"])
    columns = [f"env.{k}" for k in ENV_KEYS]
    folds = folds[folds[columns].notna().all(axis=1)]
    return {k: {str(v): int(n) for v, n in folds[f"env.{k}"].value_counts(sort=False).items()} for k in ENV_KEYS
            } if len(folds) else {}


def collect(
    source: RunStore | RunResults,
    *,
    group_by: str | None = None,
    rows: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    profile_columns: Sequence[str] | None = None,
) -> Table:
    """The leaderboard of a run, built on its tidy frame (``benchkit.report.frame``). Arguments left at None come
    from the grid's ``report:`` section, else the defaults (group by backbone; rows by level, aggregator; columns:
    rows, group, then every other label that varies; with several runs, then ``run``). ``group_by="none"`` puts
    all cells in one group. Profile keys may also be named in ``columns``."""
    results = source if isinstance(source, RunResults) else load_results(source)
    frame = results_frame(results)
    opts = results.report_options
    group = group_by if group_by is not None else opts.get("group_by", DEFAULT_GROUP_BY)
    group = None if group is None or str(group).lower() in NO_GROUP else str(group)
    row_keys = list(rows or opts.get("rows") or DEFAULT_ROWS)
    requested = list(columns or opts.get("columns") or [])
    extra = _unique([*(profile_columns or opts.get("profile_columns") or []),
                     *(c for c in requested if c in PROFILE_KEYS)])
    requested = [c for c in requested if c not in PROFILE_KEYS]
    names = [m["name"] for m in results.metrics]

    # one entry per cell (then baseline), in the frame's order: labels as text, per-metric summaries, fold counts
    first = frame.drop_duplicates("cell")
    label_keys = [k for k in frame.attrs["labels"] if first.loc[~first["baseline"], k].notna().any()]
    runs = frame[frame["status"] == "stored"].groupby("cell", sort=False)["run"].unique()
    if results.merged:
        label_keys.append("run")
    known = _unique([*AXES, *label_keys])
    for key in [*row_keys, *([group] if group else []), *requested]:
        if key not in known:
            raise BenchkitError(f"unknown report column {key!r}; this run's cells have {', '.join(known)}")
    for key in extra:
        if key not in PROFILE_KEYS:
            raise BenchkitError(f"unknown profile column {key!r}; choose from {', '.join(PROFILE_KEYS)}")
    stored = frame[(frame["status"] == "stored") & frame["value"].notna()]
    values = stored.groupby(["cell", "metric"], sort=False)["value"].apply(list).to_dict()
    counts = frame.drop_duplicates(["cell", "fold"]).groupby("cell", sort=False)["status"].value_counts().unstack(
        fill_value=0).reindex(columns=list(STATUSES), fill_value=0)
    chosen = [c for c in frame.columns if c.startswith(SELECTED)]  # none without selection: the table as before
    folds = frame[(frame["status"] == "stored") & ~frame["baseline"]].drop_duplicates(["cell", "fold"])
    picked = {c.removeprefix(SELECTED): folds.groupby("cell", sort=False)[c].agg(lambda s: selected_text(list(s)))
              for c in chosen}

    def row(cell: dict[str, Any]) -> Row:
        key = cell["cell"]
        labels = {k: label_text(cell[k]) for k in frame.attrs["labels"] if not pd.isna(cell[k])}
        if results.merged:
            labels["run"] = "+".join(runs.get(key, [cell["run"]]))
        group_text = "" if cell["baseline"] or not group else labels.get(group, "")
        selected = {k: text for k, texts in picked.items() if (text := texts.get(key, ""))}
        return Row(labels, {m: summarize(values.get((key, m), [])) for m in names}, int(counts.loc[key, "stored"]),
                   bool(cell["baseline"]), int(counts.loc[key, "failed"]),
                   {k: float(cell[k]) for k in extra if k in cell and not pd.isna(cell[k])}, key, group_text,
                   labels.get("dataset", ""), selected)

    every = [row(c) for c in first.to_dict("records")]
    cells, baselines = [r for r in every if not r.baseline], [r for r in every if r.baseline]
    varying = [k for k in label_keys if len({r.labels.get(k, "") for r in cells}) > 1]
    varying = [*(k for k in AXES if k in varying), *sorted(k for k in varying if k not in AXES and k != "run")]
    label_columns = requested or _unique([*row_keys, *([group] if group else []), *varying,
                                          *(["run"] if results.merged else [])])
    orders = {k: _first_seen([r.labels.get(k, "") for r in cells]) for k in row_keys}
    groups = _first_seen([r.group for r in cells])
    cells.sort(key=lambda r: (groups[r.group], *(orders[k][r.labels.get(k, "")] for k in row_keys)))
    sections = _first_seen([r.section for r in [*cells, *baselines]])
    ordered = [r for s in sections for r in [*cells, *baselines] if r.section == s]
    kind = (results.plan.get("protocol") or {}).get("kind", "group_kfold")
    return Table(results.plan["grid"], results.plan.get("description", ""), label_columns, results.metrics,
                 ordered, results.folds, int(opts.get("decimals", 2)), group, row_keys, extra,
                 "folds" if kind == "group_kfold" else "random splits", _environment(frame), list(picked))


# -- marks --------------------------------------------------------------------------------------------------------


def marks(table: Table) -> dict[tuple[int, str], str]:
    """``(row index, metric) → BEST | OVERALL`` for the marked cells of every section."""
    index = {id(r): i for i, r in enumerate(table.rows)}
    out: dict[tuple[int, str], str] = {}
    for _, rows in table.sections():
        multi = len({r.group for r in rows if not r.baseline}) > 1
        for m in table.metrics:
            name = m["name"]
            pick = max if m.get("higher_is_better", True) else min
            scored = [(r, round(r.metrics[name].mean, table.decimals)) for r in rows
                      if not r.baseline and r.metrics[name].n >= table.folds and not math.isnan(r.metrics[name].mean)]
            for group in _unique(r.group for r, _ in scored):
                best = pick(v for r, v in scored if r.group == group)
                out.update({(index[id(r)], name): BEST for r, v in scored if r.group == group and v == best})
            if multi and scored:
                best = pick(v for _, v in scored)
                out.update({(index[id(r)], name): OVERALL for r, v in scored if v == best})
    return out


# -- text pieces shared by the formats ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    plus_minus: str
    bold: tuple[str, str]
    overall: tuple[str, str]
    escape: Callable[[str], str]


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return re.sub(r"[\\&%_#${}~^]", lambda m: _LATEX_SPECIAL[m.group()], text)


STYLES = {
    "md": _Style(" ± ", ("**", "**"), ("<ins>**", "**</ins>"), lambda t: t.replace("|", "\\|")),
    "latex": _Style(r" $\pm$ ", (r"\textbf{", "}"), (r"\underline{\textbf{", "}}"), latex_escape),
    "html": _Style(" ± ", ("<strong>", "</strong>"), ("<strong><u>", "</u></strong>"), html.escape),
}


def format_summary(s: Summary, decimals: int, plus_minus: str = " ± ") -> str:
    if s.n == 0:
        return "–"
    text = f"{s.mean:.{decimals}f}"
    if not math.isnan(s.half_width):
        text += f"{plus_minus}{s.half_width:.{decimals}f}"
    return text


def format_number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def header(column: str) -> str:
    return PROFILE_HEADERS.get(column) or column.replace("_", " ").capitalize()


def _label(row: Row, column: str) -> str:
    return row.labels.get(column, "")  # a baseline's labels: its name as the aggregator, its dataset, sweep values


def _display_columns(table: Table) -> list[str]:
    """Label columns as the Markdown / LaTeX / HTML tables show them: the dataset is the section's caption."""
    return [c for c in table.columns if not (c == "dataset" and len(table.sections()) > 1)]


def _shown(table: Table, rows: list[Row], columns: list[str]) -> list[list[str]]:
    """Label texts with repeats left blank, as in the papers: a row key is shown when it or a row key before it
    changes; the group column at the start of each block (group + first row key)."""
    out = []
    keys = table.row_keys
    for i, r in enumerate(rows):
        prev = rows[i - 1] if i else None
        same_group = prev is not None and not r.baseline and not prev.baseline and prev.group == r.group
        texts = []
        for c in columns:
            text = _label(r, c)
            if same_group and c == table.group_by:
                block = keys[:1] if len(keys) > 1 else []
                text = "" if all(r.labels.get(k) == prev.labels.get(k) for k in block) else text
            elif same_group and c in keys:
                text = "" if all(r.labels.get(k) == prev.labels.get(k) for k in keys[: keys.index(c) + 1]) else text
            texts.append(text)
        if r.baseline and columns and "aggregator" not in columns and not texts[0]:
            texts[0] = _label(r, "aggregator")  # a baseline's name, whatever the first column is
        out.append(texts)
    return out


def _header_texts(table: Table, columns: list[str]) -> list[str]:
    short = [short_key(k) for k in table.selected]  # the full key where two short ones would read alike
    out = [header(c) for c in columns] + [s if short.count(s) == 1 else f"{k}*" for s, k in zip(short, table.selected,
                                                                                                 strict=True)]
    out += [f"{m['name']} {'↑' if m.get('higher_is_better', True) else '↓'}" for m in table.metrics]
    out += [header(c) for c in table.profile_columns]
    return out + (["Folds"] if table.incomplete else [])


def _value_texts(table: Table, row: Row, mark: dict[str, str], style: _Style) -> list[str]:
    out = [style.escape(row.selected.get(k, "")) for k in table.selected]
    for m in table.metrics:
        text = format_summary(row.metrics[m["name"]], table.decimals, style.plus_minus)
        wrap = {BEST: style.bold, OVERALL: style.overall}.get(mark.get(m["name"], ""))
        out.append(f"{wrap[0]}{text}{wrap[1]}" if wrap else text)
    out += [format_number(row.profile.get(c)) if not row.baseline else "" for c in table.profile_columns]
    if table.incomplete:
        out.append(f"{row.folds}/{table.folds}" + (f" ({row.failed} failed)" if row.failed else ""))
    return out


def caption(table: Table, section: str, markup: bool = False) -> str:
    """One sentence per table: what the numbers are and what the marks mean (``markup``: Markdown emphasis)."""
    rows = dict(table.sections()).get(section, [])
    multi_group = len({r.group for r in rows if not r.baseline}) > 1
    title = table.title + (f" — {section}" if len(table.sections()) > 1 and section else "")
    bold, overall = (STYLES["md"].bold, STYLES["md"].overall) if markup else (("", ""), ("", ""))
    text = (f"{bold[0]}{title}{bold[1]}: mean ± 95% CI over {table.folds} {table.splits} (t-distribution, ddof 1). "
            f"{bold[0]}Bold{bold[1]}: best per metric" + (f" and {table.group_by}" if multi_group else ""))
    text += f"; {overall[0]}bold underlined{overall[1]}: best overall." if multi_group else "."
    if table.incomplete:
        text += " Folds: stored/planned; only cells with every fold stored are marked."
    return text


def environment_note(table: Table) -> str:
    """What produced the numbers, from ``environment.json`` (and the fold records): torch, transformers and timm
    versions and the device; where the folds disagree, each value with its number of folds and a warning. Empty for
    a run directory without an environment."""
    env = table.environment
    if not env:
        return ""

    def values(key: str) -> str:
        found = env.get(key) or {"not recorded": 0}
        return next(iter(found)) if len(found) == 1 else " / ".join(f"{v} ({n} folds)" for v, n in found.items())

    text = (f"Environment: torch {values('torch')}, transformers {values('transformers')}, timm {values('timm')}; "
            f"device {values('device')}.")
    mixed = [k for k in ENV_KEYS if len(env.get(k) or {}) > 1]
    if mixed:
        text += f" The folds come from different environments ({', '.join(mixed)}): compare with care."
    return text


# -- formats ------------------------------------------------------------------------------------------------------


def _csv(table: Table) -> str:
    names = [m["name"] for m in table.metrics]
    data = {c: [_label(r, c) for r in table.rows] for c in table.columns}
    data.update({f"{SELECTED}{k}": [r.selected.get(k, "") for r in table.rows] for k in table.selected})
    data["baseline"] = [int(r.baseline) for r in table.rows]
    data["folds"] = [r.folds for r in table.rows]
    for m in names:
        data[f"{m}_mean"] = [r.metrics[m].mean for r in table.rows]
        data[f"{m}_ci95"] = [r.metrics[m].half_width for r in table.rows]
    for c in table.profile_columns:
        data[c] = [float(r.profile.get(c, math.nan)) for r in table.rows]
    return pd.DataFrame(data).to_csv(index=False, float_format="%.6g", lineterminator="\n")


def markdown_table(heads: list[str], rows: list[list[str]], labels: int) -> str:
    """A GitHub table without padding: ``| a | b |``, ``|---|---:|`` (label columns left, numbers right)."""
    rule = "|" + "|".join(["---"] * labels + ["---:"] * (len(heads) - labels)) + "|"
    fmt = TableFormat(lineabove=None, linebelowheader=lambda *_: rule, linebetweenrows=None, linebelow=None,
                      headerrow=DataRow("|", "|", "|"), datarow=DataRow("|", "|", "|"), padding=1,
                      with_header_hide=None)
    return tabulate(rows, heads, tablefmt=fmt, disable_numparse=True, stralign=None, numalign=None)


def _md(table: Table, sections: list[tuple[str, list[Row]]], mark: dict, columns: list[str]) -> str:
    style = STYLES["md"]
    heads = _header_texts(table, columns)
    blocks = []
    for section, rows in sections:
        body = [[style.escape(t) for t in labels] + _value_texts(table, r, mark.get(id(r), {}), style)
                for r, labels in zip(rows, _shown(table, rows, columns), strict=True)]
        blocks.append(f"{caption(table, section, markup=True)}\n\n{markdown_table(heads, body, len(columns))}\n")
    note = environment_note(table)
    return "\n".join([*blocks, *([note + "\n"] if note else [])])


def _latex(table: Table, sections: list[tuple[str, list[Row]]], mark: dict, columns: list[str]) -> str:
    style = STYLES["latex"]
    heads = [latex_escape(h).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
             for h in _header_texts(table, columns)]
    blocks = []
    for section, rows in sections:
        lines = [
            "% " + caption(table, section),
            r"\begin{tabular}{" + "l" * len(columns) + "r" * (len(heads) - len(columns)) + "}",
            r"\toprule",
            " & ".join(heads) + r" \\",
            r"\midrule",
        ]
        block = table.row_keys[:1] if len(table.row_keys) > 1 else []
        for i, (r, labels) in enumerate(zip(rows, _shown(table, rows, columns), strict=True)):
            prev = rows[i - 1] if i else r
            if r.baseline != prev.baseline or (not r.baseline and r.group != prev.group):
                lines.append(r"\midrule")
            elif not r.baseline and any(r.labels.get(k) != prev.labels.get(k) for k in block):
                lines.append(r"\addlinespace")  # a new block (embedding level) within the group
            values = [t.replace("–", "--") for t in _value_texts(table, r, mark.get(id(r), {}), style)]
            lines.append(" & ".join([*(style.escape(t) for t in labels), *values]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        blocks.append("\n".join(lines) + "\n")
    note = environment_note(table)
    return "\n".join([*blocks, *([f"% {note}\n"] if note else [])])


def _html(table: Table, sections: list[tuple[str, list[Row]]], mark: dict, columns: list[str]) -> str:
    style = STYLES["html"]
    heads = _header_texts(table, columns)
    blocks = []
    for section, rows in sections:
        out = ['<table class="leaderboard">',
               f"<caption>{html.escape(caption(table, section))}</caption>",
               "<thead><tr>" + "".join(f'<th{"" if i < len(columns) else " class=num"}>{html.escape(h)}</th>'
                                       for i, h in enumerate(heads)) + "</tr></thead>"]
        for i, (r, labels) in enumerate(zip(rows, _shown(table, rows, columns), strict=True)):
            if not i or r.baseline != rows[i - 1].baseline or (not r.baseline and r.group != rows[i - 1].group):
                out.append("</tbody>" * bool(i) + f'<tbody class="{"baselines" if r.baseline else "group"}">')
            css = " class=incomplete" if r.folds < table.folds else ""
            cells = [f"<td>{style.escape(t)}</td>" for t in labels]
            cells += [f"<td class=num>{t}</td>" for t in _value_texts(table, r, mark.get(id(r), {}), style)]
            out.append(f"<tr{css} title=\"{html.escape(r.key)}\">" + "".join(cells) + "</tr>")
        out += ["</tbody>", "</table>"]
        blocks.append("\n".join(out) + "\n")
    note = environment_note(table)
    return "\n".join([*blocks, *([f'<p class="meta environment">{html.escape(note)}</p>\n'] if note else [])])


def render(table: Table, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise BenchkitError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return _csv(table)
    by_row: dict[int, dict[str, str]] = {}
    for (i, metric), kind in marks(table).items():
        by_row.setdefault(id(table.rows[i]), {})[metric] = kind
    writer = {"md": _md, "latex": _latex, "html": _html}[fmt]
    return writer(table, table.sections(), by_row, _display_columns(table))


def write_leaderboard(store: RunStore) -> str:
    text = render(collect(store), "md")
    atomic_write_text(store.root / "leaderboard.md", text)
    return text
