"""A run's report in every format: the leaderboard, paired comparisons and figures, as text or as files; with
hyper-parameter selection, also ``selection.md`` (every candidate's validation score, benchkit/report/selection.py).

Options left at None come from the grid's ``report:`` section (stored in ``plan.json``), else the defaults, so
``benchkit report`` and the leaderboard written by ``benchkit run`` agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.report.figures import KINDS, Plot, build_plots, save_plots
from benchkit.report.html import render_html
from benchkit.report.leaderboard import FORMATS, collect, render
from benchkit.report.paired import Comparison, compare, render_comparisons
from benchkit.report.results import RunResults, load_results
from benchkit.report.selection import SELECTION_MD, selection_markdown
from benchkit.storage.store import RunStore, atomic_write_text

FILES = {"md": "leaderboard.md", "csv": "leaderboard.csv", "latex": "leaderboard.tex", "html": "report.html"}
PAIRED_CSV = "paired.csv"
FIGURES_DIR = "figures"


@dataclass
class ReportOptions:
    group_by: str | None = None
    rows: Sequence[str] | None = None
    columns: Sequence[str] | None = None  # label columns and/or profile keys (params_M, gflops, latency_ms, ...)
    profile_columns: Sequence[str] | None = None
    compare: Sequence[tuple[str, str]] = field(default_factory=list)
    figures: Sequence[str] | None = None  # figure kinds
    metric: str | None = None  # the figures' metric
    confusion: str | Sequence[str] | None = None  # "best", "all", or cell selectors


class RunReport:
    def __init__(self, run_dir: str | Path | RunStore | Sequence[str | Path | RunStore],
                 options: ReportOptions | None = None) -> None:
        """``run_dir``: one run directory, or several read as one leaderboard (``merge_results``)."""
        self.options = options or ReportOptions()
        self.results: RunResults = load_results(run_dir)
        opts, o = self.results.report_options, self.options
        self.table = collect(self.results, group_by=o.group_by, rows=o.rows, columns=o.columns,
                             profile_columns=o.profile_columns)
        pairs = [*(opts.get("compare") or []), *o.compare]
        self.comparisons: list[Comparison] = [c for a, b in pairs for c in compare(self.results, a, b)]
        self._plots: list[Plot] | None = None

    def plots(self) -> list[Plot]:
        if self._plots is None:
            opts, o = self.results.report_options, self.options
            planned = opts.get("figures")
            self._plots = build_plots(
                self.results,
                kinds=o.figures or planned or KINDS,
                metric=o.metric or opts.get("figure_metric"),
                confusion=o.confusion or opts.get("confusion") or "best",
            )
        return self._plots

    def text(self, fmt: str, figures: bool = True) -> str:
        """One format as text; HTML embeds the figures (unless ``figures`` is False)."""
        decimals = self.table.decimals
        if fmt == "html":
            paired = render_comparisons(self.comparisons, "html", decimals)
            return render_html(self.results, self.table, self.plots() if figures else [], paired)
        text = render(self.table, fmt)
        if fmt in ("md", "latex") and self.comparisons:
            text += "\n" + render_comparisons(self.comparisons, fmt, decimals)
        return text

    def selection(self) -> str:
        """``selection.md``'s text: per cell and candidate, the validation score; empty without selection."""
        return selection_markdown(self.results, self.table)

    def write(self, out_dir: str | Path, formats: Sequence[str] = FORMATS, figures: bool = True) -> list[Path]:
        """Write ``formats`` (and ``paired.csv``, ``selection.md`` when the run selected hyper-parameters, figures as
        PNG and SVG under ``figures/``) into ``out_dir``."""
        out_dir = Path(out_dir)
        written = []
        for fmt in formats:
            path = out_dir / FILES[fmt]
            atomic_write_text(path, self.text(fmt, figures))
            written.append(path)
        if "csv" in formats and self.comparisons:
            atomic_write_text(out_dir / PAIRED_CSV, render_comparisons(self.comparisons, "csv"))
            written.append(out_dir / PAIRED_CSV)
        if selection := self.selection():
            atomic_write_text(out_dir / SELECTION_MD, selection)
            written.append(out_dir / SELECTION_MD)
        if figures:
            written += save_plots(self.plots(), out_dir / FIGURES_DIR)
        return written
