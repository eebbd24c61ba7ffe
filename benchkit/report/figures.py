"""Figures of a run, from the store only (matplotlib's object API on the Agg canvas: no pyplot, no display).

- ``sensitivity-<key>``: a metric against a sweep key (``train_fraction``, ``frames``), one series per
  configuration (aggregator, level, ...), mean with 95% CI error bars, one panel per dataset (InvPatch Figs. 4-5).
- ``confusion-<dataset>-<cell>[-<part>]``: reference vs predicted class, pooled over the stored folds, counts on a
  log colour scale (Fig. 3); rows are labelled with their recall. By default for the best complete cell of each
  dataset, and once per ``part`` the grid's metrics use (BIMACS hands: ``even`` / ``odd``).
- ``cost-<dataset>``: the metric (mean ± 95% CI) against GFLOPs and latency from the cells' ``profile.json``.
- ``selection``: hyper-parameter selection's validation score of each candidate (mean ± standard deviation over
  the folds), one line per cell with candidates (benchkit/report/selection.py).

A figure is drawn only when its data is there (a sweep that varies, stored predictions, profiles, selection
records).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

from benchkit.errors import BenchkitError, StoreError
from benchkit.report.confusion import confusion_matrix
from benchkit.report.results import Result, RunResults
from benchkit.report.selection import cell_selections, spread

KINDS = ("sensitivity", "confusion", "cost", "selection")
FORMATS = ("png", "svg")
COST_AXES = {"gflops": "GFLOPs per sample", "latency_ms": "latency (ms)"}
SWEEP_TITLES = {"train_fraction": "training set fraction", "frames": "frames per window"}
DPI = 150
ANNOTATE_MAX_CLASSES = 24
DODGE_PT = 4.0  # horizontal offset between the series of a sensitivity plot, in points


@dataclass
class Plot:
    name: str
    figure: Figure
    caption: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def _sections(results: RunResults) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {}
    for c in results.cells:
        out.setdefault(c.label("dataset"), []).append(c)
    return out


def _series_keys(results: RunResults, cells: list[Result], exclude: Sequence[str]) -> list[str]:
    return [k for k in results.varying(cells) if k not in exclude]


def _metric_label(metric: dict) -> str:
    unit = metric.get("unit") or ""
    return f"{metric['name']} ({unit})" if unit else metric["name"]


def _errorbar(ax, x, summaries, **kwargs) -> None:
    means = [s.mean for s in summaries]
    errs = [0.0 if math.isnan(s.half_width) else s.half_width for s in summaries]
    ax.errorbar(x, means, yerr=errs, capsize=3, elinewidth=1, markersize=5, **kwargs)


def _legend_width(labels) -> float:
    """Inches to add to a figure for a legend outside the panels (none for a single entry)."""
    labels = list(labels)
    return 0.9 + 0.075 * max(len(label) for label in labels) if len(labels) > 1 else 0.0


def _dodge(fig: Figure, ax, i: int, n: int):
    """The data transform of series ``i`` of ``n``, shifted sideways a few points on screen (the data unchanged), so
    that the error bars of series side by side do not hide each other."""
    return ax.transData + ScaledTranslation(DODGE_PT * (i - (n - 1) / 2) / 72, 0, fig.dpi_scale_trans)


def _dodged_limits(ax, xs, summaries) -> None:
    """Widen the autoscaled limits to points drawn with an offset transform, which keeps them out of the limits."""
    ax.update_datalim([(x, s.mean + sign * (0 if math.isnan(s.half_width) else s.half_width))
                       for x, s in zip(xs, summaries, strict=True) if not math.isnan(s.mean) for sign in (-1, 1)])


def _legend(fig: Figure, axes, title: str) -> None:
    """One legend for all panels, outside on the right (the series are the same in every panel)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if len(entries) > 1:
        fig.legend(list(entries.values()), list(entries), loc="outside right upper", fontsize="small",
                   title=title or None, title_fontsize="small")


# -- sensitivity --------------------------------------------------------------------------------------------------


def sensitivity_plot(results: RunResults, key: str, metric: str | None = None) -> Plot | None:
    """The metric against sweep ``key``; None when no dataset has two values of it."""
    m = results.metric(metric)
    panels: dict[str, dict[str, list[Result]]] = {}  # dataset -> series label -> cells
    titles: list[str] = []
    for name, cells in _sections(results).items():
        keys = _series_keys(results, cells, ("dataset", key))  # over every cell: a stable series identity
        points = [c for c in cells if isinstance(c.labels.get(key), int | float) and c.summary(m["name"]).n]
        if len({c.labels[key] for c in points}) < 2:
            continue
        series: dict[str, list[Result]] = {}
        for c in sorted(points, key=lambda c: c.labels[key]):
            series.setdefault(" / ".join(c.label(k) for k in keys) or c.name(sweeps=False), []).append(c)
        panels[name] = series
        titles.append(" / ".join(keys))
    if not panels:
        return None
    labels = {label for series in panels.values() for label in series}
    fig = Figure(figsize=(4.6 * len(panels) + _legend_width(labels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, series) in zip(axes, panels.items(), strict=True):
        for i, (label, members) in enumerate(series.items()):
            dodge = _dodge(fig, ax, i, len(series))
            summaries = [c.summary(m["name"]) for c in members]
            xs = [c.labels[key] for c in members]
            _errorbar(ax, xs, summaries, marker="o", label=label, transform=dodge)
            _dodged_limits(ax, xs, summaries)
            partial = [(c.labels[key], s.mean) for c, s in zip(members, summaries, strict=True) if s.n < results.folds]
            if partial:  # fewer folds than planned: an open marker
                ax.plot(*zip(*partial, strict=True), marker="o", markerfacecolor="white", linestyle="none",
                        color=ax.containers[-1].lines[0].get_color(), zorder=3, transform=dodge)
        ax.autoscale_view()
        values = sorted({c.labels[key] for members in series.values() for c in members})
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.set_xlabel(SWEEP_TITLES.get(key, key))
        ax.set_ylabel(_metric_label(m))
        ax.set_title(name if len(series) > 1 else f"{name}: {next(iter(series))}", fontsize="medium")
        ax.grid(alpha=0.3)
    _legend(fig, axes, titles[0])
    caption = (f"Sensitivity: {m['name']} against {SWEEP_TITLES.get(key, key)}; mean over {results.folds} splits "
               "with 95% CI error bars (t-distribution, ddof 1); series are offset a little sideways so that their "
               "bars do not overlap; an open marker has fewer splits stored.")
    return Plot(f"sensitivity-{_slug(key)}", fig, caption)


# -- confusion ----------------------------------------------------------------------------------------------------


def _parts(results: RunResults) -> list[str]:
    """``all``, then every ``part`` a metric of the grid scores separately (BIMACS: the two hands)."""
    parts = [str((m.get("kwargs") or {}).get("part")) for m in results.metrics if (m.get("kwargs") or {}).get("part")]
    return list(dict.fromkeys(["all", *(p for p in parts if p != "all")]))


def _pooled(results: RunResults, cell: Result) -> tuple[list, list]:
    predictions: list = []
    references: list = []
    for k in sorted(cell.folds):
        try:
            stored = results.store.load_predictions(cell.folder, k)
        except StoreError:
            continue
        predictions += stored["predictions"]
        references += stored["references"]
    return predictions, references


def best_cells(results: RunResults, metric: str | None = None) -> list[Result]:
    """Per dataset, the cell with the best mean among those with every fold stored (else among all)."""
    m = results.metric(metric)
    sign = 1 if m.get("higher_is_better", True) else -1
    out = []
    for cells in _sections(results).values():
        scored = [c for c in cells if c.summary(m["name"]).n and not math.isnan(c.summary(m["name"]).mean)]
        complete = [c for c in scored if len(c.folds) >= results.folds] or scored
        if complete:
            out.append(max(complete, key=lambda c: sign * c.summary(m["name"]).mean))
    return out


def confusion_plot(results: RunResults, cell: Result, part: str = "all") -> Plot | None:
    """Pooled confusion matrix of ``cell`` on a log colour scale; None when it has no stored predictions."""
    predictions, references = _pooled(results, cell)
    if not references:
        return None
    seen = max((a for seq in (*predictions, *references) for a in seq), default=-1)
    actions = results.actions(cell.dataset_key) or []
    if seen >= len(actions):  # no vocabulary in the plan (or not this one): name the actions by id
        actions = [str(i) for i in range(seen + 1)]
    matrix, names = confusion_matrix(predictions, references, actions, part)
    keep = [i for i in range(len(names)) if i < len(actions) or matrix[i].any() or matrix[:, i].any()]
    matrix, names = matrix[np.ix_(keep, keep)], [names[i] for i in keep]
    totals = matrix.sum(axis=1)
    recall = [f"{names[i]} ({100 * matrix[i, i] / totals[i]:.0f}%)" if totals[i] else names[i]
              for i in range(len(names))]
    size = 2.2 + 0.42 * len(names)
    fig = Figure(figsize=(size + 1.6, size), layout="constrained")
    ax = fig.subplots()
    # Blues from a visible light blue (a count of 1 must not look like an empty cell); zeros blank
    cmap = ListedColormap(matplotlib.colormaps["Blues"](np.linspace(0.12, 1, 256))).with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_equal(matrix, 0), cmap=cmap, norm=LogNorm(vmin=1, vmax=max(int(matrix.max()), 2)))
    fig.colorbar(image, ax=ax, shrink=0.8, label="count (log scale)")
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, recall)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference (recall)")
    if len(names) <= ANNOTATE_MAX_CLASSES:
        top = math.log(max(int(matrix.max()), 2))
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                dark = math.log(v) / top > 0.6
                ax.text(j, i, f"{v:,}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    what = "" if part == "all" else f", part {part}"
    ax.set_title(f"{cell.label('dataset')}: {cell.name()}{what}", fontsize="medium")
    caption = (f"Confusion matrix of {cell.name()} on {cell.label('dataset')}{what}, pooled over {len(cell.folds)} "
               "folds; counts on a logarithmic colour scale; each row's recall in brackets.")
    suffix = "" if part == "all" else f"-{_slug(part)}"
    return Plot(f"confusion-{_slug(cell.label('dataset'))}-{cell.key}{suffix}", fig, caption)


# -- cost ---------------------------------------------------------------------------------------------------------


def cost_plot(results: RunResults, dataset: str, cells: list[Result], metric: str | None = None) -> Plot | None:
    """The metric against GFLOPs and latency (one panel each that some cell has); None without profiles."""
    m = results.metric(metric)
    cells = [c for c in cells if c.summary(m["name"]).n]
    fractions = [c.labels["train_fraction"] for c in cells if isinstance(c.labels.get("train_fraction"), int | float)]
    if fractions:  # the cost does not depend on the training set size: the full-data points only
        cells = [c for c in cells if c.labels.get("train_fraction", max(fractions)) == max(fractions)]
    axes_keys = [k for k in COST_AXES if any(k in c.profile for c in cells)]
    if not axes_keys:
        return None
    keys = _series_keys(results, cells, ("dataset",)) or ["aggregator"]
    width = _legend_width(" / ".join(c.label(k) for k in keys) for c in cells)
    fig = Figure(figsize=(4.6 * len(axes_keys) + width, 3.8), layout="constrained")
    axes = fig.subplots(1, len(axes_keys), squeeze=False, sharey=True)[0]
    markers = "osD^v<>ph*"
    for ax, key in zip(axes, axes_keys, strict=True):
        for i, c in enumerate(cells):
            if key in c.profile:
                _errorbar(ax, [c.profile[key]], [c.summary(m["name"])], marker=markers[i // 10 % len(markers)],
                          linestyle="none", color=f"C{i % 10}", label=" / ".join(c.label(k) for k in keys))
        xs = [c.profile[key] for c in cells if key in c.profile]
        if min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(COST_AXES[key])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_metric_label(m))
    _legend(fig, axes, " / ".join(keys))
    fig.suptitle(f"{dataset}: {m['name']} against cost", fontsize="medium")
    caption = (f"{m['name']} (mean ± 95% CI) against {' and '.join(COST_AXES[k] for k in axes_keys)} on {dataset}, "
               "from the cells' profiles.")
    return Plot(f"cost-{_slug(dataset)}", fig, caption)


# -- selection ----------------------------------------------------------------------------------------------------


def selection_plot(results: RunResults) -> Plot | None:
    """Validation score per candidate, one line per cell with candidates; one panel per set of selected keys and
    metric. A single numeric key is the x axis itself (log-scale when positive and spanning 10x or more); otherwise
    candidates stand side by side, labelled by their values. None without selection records."""
    selections = cell_selections(results)
    if not selections:
        return None
    panels: dict[tuple[tuple[str, ...], str], list] = {}
    for s in selections:
        panels.setdefault((tuple(s.keys), s.metric), []).append(s)
    keys = results.varying([s.cell for s in selections])
    names = {s.cell.key: " / ".join(s.cell.label(k) for k in keys) or s.cell.name() for s in selections}
    fig = Figure(figsize=(4.6 * len(panels) + _legend_width(names.values()), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, ((selected, metric), members) in zip(axes, panels.items(), strict=True):
        values = [c.values.get(selected[0]) for s in members for c in s.candidates]
        numeric = len(selected) == 1 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        labels = list(dict.fromkeys(c.label(selected, "\n") for s in members for c in s.candidates))
        for i, s in enumerate(members):
            dodge = _dodge(fig, ax, i, len(members))
            xs = [c.values[selected[0]] if numeric else labels.index(c.label(selected, "\n")) for c in s.candidates]
            summaries = [spread(c.scores) for c in s.candidates]
            _errorbar(ax, xs, summaries, marker="o", label=names[s.cell.key], transform=dodge)
            _dodged_limits(ax, xs, summaries)
            never = [(x, m.mean) for x, m, c in zip(xs, summaries, s.candidates, strict=True) if not c.selected]
            if never:  # a candidate no fold kept: an open marker
                ax.plot(*zip(*never, strict=True), marker="o", markerfacecolor="white", linestyle="none",
                        color=ax.containers[-1].lines[0].get_color(), zorder=3, transform=dodge)
        ax.autoscale_view()
        if numeric:
            ticks = sorted(set(values))
            if ticks[0] > 0 and ticks[-1] / ticks[0] >= 10:  # 10x or more (3e-3 / 3e-4 may round either way)
                ax.set_xscale("log")
                ax.minorticks_off()
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        else:
            ax.set_xticks(range(len(labels)), labels, fontsize="small")
        ax.set_xlabel(selected[0] if len(selected) == 1 else "candidate")
        ax.set_ylabel(f"validation {metric}")
        ax.grid(alpha=0.3)
        if len(members) == 1:
            ax.set_title(names[members[0].cell.key], fontsize="medium")
    _legend(fig, axes, " / ".join(keys))
    caption = (f"Hyper-parameter selection: each candidate's validation score, mean ± standard deviation (ddof 1) "
               f"over the {results.folds} folds, one line per cell; an open marker is a candidate that no fold kept. "
               "Lines are offset a little sideways so that their bars do not overlap.")
    return Plot("selection", fig, caption)


# -- all of them --------------------------------------------------------------------------------------------------


def build_plots(
    results: RunResults,
    kinds: Sequence[str] = KINDS,
    metric: str | None = None,
    confusion: str | Sequence[str] = "best",
) -> list[Plot]:
    """Every figure of ``kinds`` that the run has data for. ``confusion``: ``"best"`` (per dataset), ``"all"``,
    or a list of cell selectors."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise BenchkitError(f"unknown figure kind {unknown[0]!r}; choose from {', '.join(KINDS)}")
    plots: list[Plot | None] = []
    if "sensitivity" in kinds:
        plots += [sensitivity_plot(results, key, metric) for key in results.sweeps()]
    if "confusion" in kinds:
        if confusion == "best":
            cells = best_cells(results, metric)
        elif confusion == "all":
            cells = results.cells
        else:
            cells = [results.find(s) for s in ([confusion] if isinstance(confusion, str) else confusion)]
        plots += [confusion_plot(results, c, part) for c in cells for part in _parts(results)]
    if "cost" in kinds:
        plots += [cost_plot(results, name, cells, metric) for name, cells in _sections(results).items()]
    if "selection" in kinds:  # on the selection metric, which the records name
        plots.append(selection_plot(results))
    return [p for p in plots if p is not None]


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    """PNG or SVG bytes; SVG ids are salted with a constant and undated, so the same run gives the same file."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "benchkit", "svg.fonttype": "path"}):
        figure.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def save_plots(plots: Sequence[Plot], out_dir: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write every plot in every format to ``out_dir`` (derived files: a rerun of the report rewrites them)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for p in plots:
        for fmt in formats:
            path = out_dir / f"{p.name}.{fmt}"
            path.write_bytes(figure_bytes(p.figure, fmt))
            out.append(path)
    return out
