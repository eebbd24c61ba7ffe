"""Hyper-parameter selection in reports: the frame's ``selected.<key>`` columns, the leaderboard's ``lr*`` column,
``selection.md`` and the ``selection`` figure; on one real tiny run and on fold records written by hand. A run without
selection reads and renders exactly as before."""

from __future__ import annotations

import json
import math
from pathlib import Path

from click.testing import CliRunner
from report_runs import cell, write_run

import benchkit
from benchkit.cli import main
from benchkit.grid.config import parse_grid
from benchkit.report.figures import build_plots
from benchkit.report.leaderboard import collect, render
from benchkit.report.results import load_results
from benchkit.report.run_report import RunReport
from benchkit.report.selection import selection_markdown
from benchkit.run.runner import run_grid

LRS = [1e-2, 1e-3]


def add_selection(run: Path, cid: str, kept: list[int], scores: list[list[float | None]],
                  values: list[dict] | None = None) -> None:
    """Give cell ``cid``'s fold records a selection among ``values`` (default: ``train.lr`` in ``LRS``): fold k kept
    candidate ``kept[k]``; ``scores[k][i]`` is candidate i's validation accuracy in fold k (None: it diverged)."""
    values = values or [{"train.lr": lr} for lr in LRS]
    for k, best in enumerate(kept):
        path = run / "cells" / cid / f"fold-{k}.json"
        record = json.loads(path.read_text())
        record["selection"] = {
            "metric": "accuracy", "higher_is_better": True,
            "validation": {"source": "0.2 of the training part's groups", "n_train": 8, "n_validation": 2},
            "candidates": [{"values": v, "validation": None if s is None else {"accuracy": s}, "diverged": s is None,
                            "final_loss": 1.0} for v, s in zip(values, scores[k], strict=True)],
            "selected": best, "values": values[best], "refit": False, "training": [], "validation_seconds": 0.01,
        }
        path.write_text(json.dumps(record))


def md_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]


def mixed_run(tmp_path: Path) -> Path:
    """Cell a kept 0.01 in every fold, b 0.001 in two of three, c selected nothing."""
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [40, 42, 44]}, aggregator="Mean"),
        cell("b", {"accuracy": [50, 51, 52]}, aggregator="LSTM"),
        cell("c", {"accuracy": [30, 31, 32]}, aggregator="CLS"),
    ])
    add_selection(run, "a", [0, 0, 0], [[20, 10], [22, None], [24, 12]])
    add_selection(run, "b", [1, 0, 1], [[30, 31], [33, 32], [30, 34]])
    return run


def test_a_real_run_with_selection(tmp_path, tiny_grid, registry):
    tiny_grid["train"]["lr"] = {"select": LRS}
    run = tmp_path / "real"
    summary = run_grid(parse_grid(tiny_grid), run, registry, say=lambda m: None, progress=False)
    assert summary.folds_run == summary.folds_total == 4 and not summary.failed

    df = benchkit.load_results(run)
    folds = df.drop_duplicates(["cell", "fold"])
    assert [c for c in df.columns if c.startswith("selected.")] == ["selected.train.lr"]
    assert set(folds.loc[~folds.baseline, "selected.train.lr"]) <= set(LRS)
    assert folds.loc[folds.baseline, "selected.train.lr"].isna().all()

    rows = md_rows(render(collect(load_results(run)), "md"))
    assert rows[0] == ["Level", "Aggregator", "Backbone", "lr*", "accuracy ↑"]
    for r in rows[1:3]:  # the two cells: the value kept in both folds, else the one kept more often (a tie: fold 0)
        picks = list(folds.loc[(folds.level == r[0]) & ~folds.baseline, "selected.train.lr"])
        assert r[3] == f"{picks[0]:g}" + ("" if picks[0] == picks[1] else " (1/2)")
    assert [r[3] for r in rows[3:]] == ["", ""]  # baselines

    result = CliRunner().invoke(main, ["report", str(run), "--format", "all"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    out = run / "report"
    text = (out / "selection.md").read_text()
    table = md_rows(text)
    assert table[0] == ["Level", "Aggregator", "Backbone", "train.lr", "validation accuracy ↑", "Selected"]
    assert [r[3] for r in table[1:]] == ["0.01", "0.001"] * 2
    assert all(r[5].endswith("/2") for r in table[1:])
    assert sum(int(r[5][0]) for r in table[1:]) == 4  # every fold of each cell kept one candidate
    assert (out / "figures" / "selection.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "figures" / "selection.svg").is_file()
    assert 'id="selection"' in (out / "report.html").read_text()


def test_frame_and_leaderboard_columns_unanimous_and_split(tmp_path):
    run = mixed_run(tmp_path)
    df = benchkit.load_results(run)
    folds = df.drop_duplicates(["cell", "fold"]).set_index(["cell", "fold"])["selected.train.lr"]
    assert list(folds["a"]) == [0.01] * 3 and list(folds["b"]) == [0.001, 0.01, 0.001]
    assert folds["c"].isna().all() and folds["random-ds-world"].isna().all()
    columns = list(df.columns)
    assert columns.index("higher_is_better") + 1 == columns.index("selected.train.lr")

    table = collect(load_results(run))
    assert table.selected == ["train.lr"]
    rows = md_rows(render(table, "md"))
    assert rows[0] == ["Level", "Aggregator", "Backbone", "lr*", "accuracy ↑"]
    assert {r[1]: r[3] for r in rows[1:]} == {"Mean": "0.01", "LSTM": "0.001 (2/3)", "CLS": "", "Random": "",
                                              "Majority": ""}
    latex = render(table, "latex")
    assert r"\begin{tabular}{lllrr}" in latex and r"Backbone & lr* & accuracy $\uparrow$ \\" in latex
    assert r" & LSTM &  & 0.001 (2/3) & \textbf{51.00 $\pm$" in latex
    html = render(table, "html")
    assert "<th>Backbone</th><th class=num>lr*</th><th class=num>accuracy ↑</th>" in html
    assert "<td class=num>0.001 (2/3)</td>" in html
    csv = render(table, "csv").splitlines()
    assert csv[0] == "level,aggregator,backbone,selected.train.lr,baseline,folds,accuracy_mean,accuracy_ci95"
    assert csv[2].startswith("patch,LSTM,ViT,0.001 (2/3),0,3,")


def test_the_lr_column_is_all_a_selection_adds(tmp_path):
    with_selection = render(collect(load_results(mixed_run(tmp_path))), "md")
    plain = write_run(tmp_path / "plain", [
        cell("a", {"accuracy": [40, 42, 44]}, aggregator="Mean"),
        cell("b", {"accuracy": [50, 51, 52]}, aggregator="LSTM"),
        cell("c", {"accuracy": [30, 31, 32]}, aggregator="CLS"),
    ])
    dropped = "\n".join("|".join(p for i, p in enumerate(line.split("|")) if i != 4) if line.startswith("|") else line
                        for line in with_selection.split("\n"))
    assert dropped == render(collect(load_results(plain)), "md")


def test_selection_md_per_cell_and_candidate(tmp_path):
    run = mixed_run(tmp_path)
    results = load_results(run)
    text = selection_markdown(results, collect(results))
    assert text.startswith("**demo: hyper-parameter selection**. Each candidate's validation score (accuracy), mean ± "
                           "standard deviation (ddof 1) over the folds, on 0.2 of the training part's groups")
    assert "Diverged: folds in which" in text
    sd_b0, sd_b1 = f"{math.sqrt(3):.2f}", f"{math.sqrt(7 / 3):.2f}"  # [30, 33, 30] and [31, 32, 34]
    assert md_rows(text) == [
        ["Level", "Aggregator", "Backbone", "train.lr", "validation accuracy ↑", "Selected", "Diverged"],
        ["patch", "Mean", "ViT", "0.01", "22.00 ± 2.00", "3/3", "0"],
        ["", "", "", "0.001", f"11.00 ± {math.sqrt(2):.2f}", "0/3", "1"],
        ["patch", "LSTM", "ViT", "0.01", f"31.00 ± {sd_b0}", "1/3", "0"],
        ["", "", "", "0.001", f"32.33 ± {sd_b1}", "2/3", "0"],
    ]
    written = RunReport(run).write(tmp_path / "out", ["md"])
    assert (tmp_path / "out" / "selection.md").read_text() == text
    assert (tmp_path / "out" / "figures" / "selection.png") in written


def test_selection_figure_axes(tmp_path):
    run = mixed_run(tmp_path)
    sizes = [{"aggregator.hidden_size": 32}, {"aggregator.hidden_size": 64}]
    add_selection(run, "c", [1, 1, 0], [[1, 2], [1, 2], [2, 1]], sizes)
    (plot,) = build_plots(load_results(run), kinds=["selection"])
    assert plot.name == "selection"
    lr, hidden = plot.figure.axes[:2]
    assert lr.get_xscale() == "log" and lr.get_xlabel() == "train.lr"  # 0.001 to 0.01: log
    assert hidden.get_xscale() == "linear" and [t.get_text() for t in hidden.get_xticklabels()] == ["32", "64"]
    assert len(lr.containers) == 2 and len(hidden.containers) == 1  # one line per cell


def test_a_run_without_selection_is_as_before(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [40, 42, 44]}, level="frame", aggregator="CLS"),
        cell("b", {"accuracy": [50, 51, None]}, aggregator="x_y", failed=[2], profile={"gflops": 1.5}),
    ], report={"profile_columns": ["gflops"]})
    assert not [c for c in benchkit.load_results(run).columns if c.startswith("selected")]
    results = load_results(run)
    table = collect(results)
    assert table.selected == [] and selection_markdown(results, table) == ""
    assert build_plots(results, kinds=["selection"]) == []
    written = RunReport(run).write(tmp_path / "out")
    assert not [p for p in written if p.stem == "selection"]
    # the leaderboard as benchkit rendered it before selection existed, byte for byte
    assert render(table, "md") == (
        "**demo**: mean ± 95% CI over 3 folds (t-distribution, ddof 1). **Bold**: best per metric. Folds: "
        "stored/planned; only cells with every fold stored are marked.\n\n"
        "| Level | Aggregator | Backbone | accuracy ↑ | GFLOPs | Folds |\n|---|---|---|---:|---:|---:|\n"
        "| frame | CLS | ViT | **42.00 ± 4.97** | – | 3/3 |\n"
        "| patch | x_y | ViT | 50.50 ± 6.35 | 1.5 | 2/3 (1 failed) |\n"
        "|  | Random |  | 11.00 ± 2.48 |  | 3/3 |\n|  | Majority |  | 30.00 ± 2.48 |  | 3/3 |\n")
    assert render(table, "latex") == (
        "% demo: mean ± 95% CI over 3 folds (t-distribution, ddof 1). Bold: best per metric. Folds: stored/planned; "
        "only cells with every fold stored are marked.\n\\begin{tabular}{lllrrr}\n\\toprule\n"
        "Level & Aggregator & Backbone & accuracy $\\uparrow$ & GFLOPs & Folds \\\\\n\\midrule\n"
        "frame & CLS & ViT & \\textbf{42.00 $\\pm$ 4.97} & -- & 3/3 \\\\\n\\addlinespace\n"
        "patch & x\\_y & ViT & 50.50 $\\pm$ 6.35 & 1.5 & 2/3 (1 failed) \\\\\n\\midrule\n"
        " & Random &  & 11.00 $\\pm$ 2.48 &  & 3/3 \\\\\n & Majority &  & 30.00 $\\pm$ 2.48 &  & 3/3 \\\\\n"
        "\\bottomrule\n\\end{tabular}\n")
    assert render(table, "csv") == (
        "level,aggregator,backbone,baseline,folds,accuracy_mean,accuracy_ci95,gflops\nframe,CLS,ViT,0,3,42,4.96828,\n"
        "patch,x_y,ViT,0,2,50.5,6.3531,1.5\n,Random,,1,3,11,2.48414,\n,Majority,,1,3,30,2.48414,\n")
    assert render(table, "html") == (
        '<table class="leaderboard">\n<caption>demo: mean ± 95% CI over 3 folds (t-distribution, ddof 1). Bold: best '
        "per metric. Folds: stored/planned; only cells with every fold stored are marked.</caption>\n"
        "<thead><tr><th>Level</th><th>Aggregator</th><th>Backbone</th><th class=num>accuracy ↑</th>"
        "<th class=num>GFLOPs</th><th class=num>Folds</th></tr></thead>\n"
        '<tbody class="group">\n<tr title="a"><td>frame</td><td>CLS</td><td>ViT</td><td class=num><strong>42.00 ± '
        "4.97</strong></td><td class=num>–</td><td class=num>3/3</td></tr>\n"
        '<tr class=incomplete title="b"><td>patch</td><td>x_y</td><td>ViT</td><td class=num>50.50 ± 6.35</td>'
        "<td class=num>1.5</td><td class=num>2/3 (1 failed)</td></tr>\n"
        '</tbody><tbody class="baselines">\n<tr title="random-ds-world"><td></td><td>Random</td><td></td>'
        "<td class=num>11.00 ± 2.48</td><td class=num></td><td class=num>3/3</td></tr>\n"
        '<tr title="majority-ds-world"><td></td><td>Majority</td><td></td><td class=num>30.00 ± 2.48</td>'
        "<td class=num></td><td class=num>3/3</td></tr>\n</tbody>\n</table>\n")
