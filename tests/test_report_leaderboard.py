"""Leaderboards like the papers' tables, on synthetic run directories: grouping, marks, formats, profiles, failures;
paired comparisons against a hand computation."""

from __future__ import annotations

import csv
import io
import math

import pytest
from report_runs import ACCURACY, ERROR, cell, write_run

from benchkit.errors import BenchkitError
from benchkit.report.leaderboard import collect, render
from benchkit.report.paired import compare, render_comparisons
from benchkit.report.results import load_results
from benchkit.storage.store import RunStore

T2 = 4.302652729911275  # t(0.975, 2)


def table1(tmp_path, **kwargs):
    """InvPatch Table I in miniature, the cells listed out of table order."""
    cells = [
        cell("c1", {"accuracy": [50, 52, 54]}, backbone="DINOv2", level="frame", aggregator="CLS"),
        cell("c2", {"accuracy": [70, 72, 74]}, backbone="VideoMAE", aggregator="Mean"),
        cell("c3", {"accuracy": [40, 41, 42]}, backbone="DINOv2", aggregator="Mean"),
        cell("c4", {"accuracy": [41, 42, 43]}, backbone="DINOv2", level="frame", aggregator="Mean"),
        cell("c5", {"accuracy": [95, 96, 97]}, backbone="VideoMAE", aggregator="InvPatch"),
        cell("c6", {"accuracy": [90, 91, 92]}, backbone="DINOv2", aggregator="InvPatch"),
    ]
    return write_run(tmp_path / "run", cells, **kwargs)


def md_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]


def test_rows_grouped_by_backbone_then_level_and_aggregator(tmp_path):
    table = collect(RunStore(table1(tmp_path)))
    assert table.columns == ["level", "aggregator", "backbone"]
    assert [r.key for r in table.rows] == ["c1", "c4", "c3", "c6", "c2", "c5", "random-ds-world", "majority-ds-world"]
    rows = md_rows(render(table, "md"))
    assert rows[0] == ["Level", "Aggregator", "Backbone", "accuracy ↑"]
    labels = [r[:3] for r in rows[1:]]
    assert labels == [
        ["frame", "CLS", "DINOv2"], ["", "Mean", ""], ["patch", "Mean", "DINOv2"], ["", "InvPatch", ""],
        ["patch", "Mean", "VideoMAE"], ["", "InvPatch", ""], ["", "Random", ""], ["", "Majority", ""],
    ]


def test_best_per_group_bold_overall_best_underlined_baselines_never(tmp_path):
    text = render(collect(RunStore(table1(tmp_path))), "md")
    hw = f"{T2 / math.sqrt(3):.2f}"  # sd 1 over 3 folds
    cells = {r[1] + "/" + str(i): r[3] for i, r in enumerate(md_rows(text)[1:])}
    assert cells["InvPatch/3"] == f"**91.00 ± {hw}**"  # best of DINOv2: bold only
    assert cells["InvPatch/5"] == f"<ins>**96.00 ± {hw}**</ins>"  # best overall: bold and underlined
    assert sum("**" in v for v in cells.values()) == 2
    assert "**" not in cells["Majority/7"] and "ins" not in cells["Random/6"]
    assert "best per metric and backbone" in text.splitlines()[0]

    latex = render(collect(RunStore(tmp_path / "run")), "latex")
    assert rf"\textbf{{91.00 $\pm$ {hw}}}" in latex and rf"\underline{{\textbf{{96.00 $\pm$ {hw}}}}}" in latex


def test_single_group_bold_without_underline_ties_all_bold(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [80, 81, 82]}, aggregator="A"),
        cell("b", {"accuracy": [81, 81, 81]}, aggregator="B"),  # same mean at 2 decimals: a tie
        cell("c", {"accuracy": [70, 70, 70]}, aggregator="C"),
    ])
    rows = md_rows(render(collect(RunStore(run)), "md"))
    assert [r[3].startswith("**") for r in rows[1:4]] == [True, True, False]
    assert "<ins>" not in render(collect(RunStore(run)), "md")
    assert rows[2][3] == "**81.00 ± 0.00**"


def test_lower_is_better_metric_marks_the_minimum(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [80, 80, 80], "error": [3.0, 3.0, 3.0]}, aggregator="A"),
        cell("b", {"accuracy": [70, 70, 70], "error": [1.0, 2.0, 3.0]}, aggregator="B"),
    ], metrics=(ACCURACY, ERROR))
    rows = md_rows(render(collect(RunStore(run)), "md"))
    assert rows[0][3:] == ["accuracy ↑", "error ↓"]
    assert rows[1][3].startswith("**") and not rows[1][4].startswith("**")
    assert rows[2][4] == f"**2.00 ± {T2 / math.sqrt(3):.2f}**"


def test_incomplete_and_failed_cells_show_n_and_are_not_marked(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [99, 99, None]}, aggregator="Best but broken", failed=[2]),
        cell("b", {"accuracy": [60, 61, 62]}, aggregator="Complete"),
        cell("c", {"accuracy": [None, None, None]}, aggregator="Never ran", failed=[0, 1, 2]),
    ])
    table = collect(RunStore(run))
    text = render(table, "md")
    rows = md_rows(text)
    assert rows[0][-1] == "Folds"
    assert rows[1][3:] == ["99.00 ± 0.00", "2/3 (1 failed)"]
    assert rows[2][3].startswith("**") and rows[2][4] == "3/3"
    assert rows[3][3:] == ["–", "0/3 (3 failed)"]
    assert "only cells with every fold stored are marked" in text
    assert [r.folds for r in table.rows[:3]] == [2, 3, 0] and table.rows[0].metrics["accuracy"].n == 2
    csv_rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert csv_rows[2]["folds"] == "0" and csv_rows[2]["accuracy_mean"] == ""


def test_latex_booktabs_structure_and_escaping(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [80, 81, 82]}, backbone="B_1", aggregator="GeM (p=3) & more"),
        cell("b", {"accuracy": [70, 70, 71]}, backbone="B_2", aggregator="50% mean"),
    ])
    lines = render(collect(RunStore(run)), "latex").splitlines()
    assert lines[0].startswith("% demo: mean ± 95% CI over 3 folds")
    assert lines[1] == r"\begin{tabular}{lllr}"
    assert lines[2] == r"\toprule" and lines[3] == r"Level & Aggregator & Backbone & accuracy $\uparrow$ \\"
    assert lines[4] == r"\midrule" and lines[-2:] == [r"\bottomrule", r"\end{tabular}"]
    body = lines[5:-2]
    assert body[0].startswith(r"patch & GeM (p=3) \& more & B\_1 &")
    assert body[1] == r"\midrule" and body[2].startswith(r"patch & 50\% mean & B\_2 &")  # a new group
    assert body[3] == r"\midrule" and body[4].startswith(" & Random &")  # baselines after a rule
    assert sum(line.count(r"\toprule") for line in lines) == 1


def test_csv_columns_and_profile_columns(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [80, 81, 82]}, aggregator="A", profile={"gflops": 54.0, "latency_ms": 41.8,
                                                                       "params_M": 74.08}),
        cell("b", {"accuracy": [70, 70, 71]}, aggregator="B"),
    ])
    table = collect(RunStore(run), columns=["aggregator", "gflops", "latency_ms"])
    assert table.columns == ["aggregator"] and table.profile_columns == ["gflops", "latency_ms"]
    reader = csv.reader(io.StringIO(render(table, "csv")))
    header, *rows = list(reader)
    assert header == ["aggregator", "baseline", "folds", "accuracy_mean", "accuracy_ci95", "gflops", "latency_ms"]
    assert rows[0] == ["A", "0", "3", "81", f"{T2 / math.sqrt(3):.6g}", "54", "41.8"]
    assert rows[1][-2:] == ["", ""] and rows[2][:2] == ["Random", "1"]
    md = md_rows(render(table, "md"))
    assert md[0] == ["Aggregator", "accuracy ↑", "GFLOPs", "Latency (ms)"]
    assert md[1][2:] == ["54", "41.8"] and md[2][2:] == ["–", "–"] and md[3][2:] == ["", ""]

    default = collect(RunStore(run))  # no profile columns unless asked; the report section can ask
    assert default.profile_columns == [] and "gflops" not in render(default, "csv")
    configured = write_run(tmp_path / "run2", [cell("a", {"accuracy": [1, 2, 3]}, profile={"params_M": 5.0})],
                           report={"profile_columns": ["params_M"], "group_by": "none", "rows": ["aggregator"]})
    table = collect(RunStore(configured))
    assert table.profile_columns == ["params_M"] and table.group_by is None and table.columns[0] == "aggregator"


def test_each_dataset_is_a_section_with_its_own_baselines(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("m1", {"accuracy": [90, 91, 92]}, dataset="MUGEN", aggregator="A"),
        cell("b1", {"accuracy": [80, 81, 82]}, dataset="BIMACS", aggregator="A"),
        cell("m2", {"accuracy": [50, 51, 52]}, dataset="MUGEN", aggregator="B"),
    ])
    table = collect(RunStore(run))
    assert table.columns == ["level", "aggregator", "backbone", "dataset"]
    md = render(table, "md")
    assert md.count("| Level | Aggregator | Backbone | accuracy ↑ |") == 2  # the dataset column moves to captions
    mugen, bimacs = md.split("\n\n**demo — BIMACS**")
    assert mugen.startswith("**demo — MUGEN**") and mugen.count("Random") == 1 and bimacs.count("Majority") == 1
    assert "**81.00" in bimacs and "**91.00" in mugen  # marked per dataset
    assert render(table, "latex").count(r"\begin{tabular}") == 2
    csv_rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert [(r["dataset"], r["aggregator"]) for r in csv_rows] == [
        ("MUGEN", "A"), ("MUGEN", "B"), ("MUGEN", "Random"), ("MUGEN", "Majority"),
        ("BIMACS", "A"), ("BIMACS", "Random"), ("BIMACS", "Majority"),
    ]


def test_sweep_values_become_columns_and_label_baselines(tmp_path):
    cells = [cell(f"f{n}-{a}", {"accuracy": [50 + n, 51 + n, 52 + n]}, aggregator=a, frames=n)
             for a in ("Mean", "LSTM") for n in (4, 8)]
    for c in cells:  # a frame-count sweep builds one dataset configuration per value
        c["dataset_key"] = f"ds-{c['labels']['frames']}"
    table = collect(RunStore(write_run(tmp_path / "run", cells, sweep=("frames",))), rows=["frames", "aggregator"])
    assert table.columns == ["frames", "aggregator", "backbone"]
    rows = md_rows(render(table, "md"))
    assert [r[:2] for r in rows[1:]] == [["4", "Mean"], ["", "LSTM"], ["8", "Mean"], ["", "LSTM"],
                                         ["4", "Random"], ["8", "Random"], ["4", "Majority"], ["8", "Majority"]]


def test_baselines_are_named_when_the_aggregator_is_not_a_column(tmp_path):
    """`report: {columns: [dataset, predictor]}` with the dataset as section captions: the baseline's name goes
    into the first column shown, not nowhere."""
    run = write_run(tmp_path / "run", [
        cell("p1", {"accuracy": [60, 61, 62]}, dataset="forecasting", predictor="VEDiT"),
        cell("p2", {"accuracy": [70, 71, 72]}, dataset="forecasting", predictor="Transformer"),
        cell("q1", {"accuracy": [80, 81, 82]}, dataset="classification", predictor="VEDiT"),
    ])
    table = collect(RunStore(run), columns=["dataset", "predictor"])
    for section in render(table, "md").split("\n\n**demo — ")[:2]:
        rows = md_rows(section)
        assert rows[0][0] == "Predictor" and [r[0] for r in rows[-2:]] == ["Random", "Majority"]
    assert [r[:2] for r in md_rows(render(collect(RunStore(run)), "md"))[-2:]] == [["", "Random"], ["", "Majority"]]


def test_bad_keys_are_one_line_errors(tmp_path):
    store = RunStore(table1(tmp_path))
    with pytest.raises(BenchkitError, match="unknown report column 'embedding'"):
        collect(store, rows=["embedding"])
    with pytest.raises(BenchkitError, match="unknown profile column 'flops'"):
        collect(store, profile_columns=["flops"])
    with pytest.raises(BenchkitError, match="unknown report format 'xls'"):
        render(collect(store), "xls")


def test_paired_comparison_by_hand(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("aaa111", {"accuracy": [90, 92, 94]}, aggregator="InvPatch"),
        cell("bbb222", {"accuracy": [88, 91, 90]}, aggregator="LSTM"),
        cell("ccc333", {"accuracy": [85, 86, None]}, aggregator="GeM"),
    ])
    results = load_results(run)
    (c,) = compare(results, "aggregator=InvPatch", "bbb")
    # differences 2, 1, 4: mean 7/3, s = sqrt(7/3), se = sqrt(7)/3, t = sqrt(7); two-sided p for 2 df: 1 - t/sqrt(t²+2)
    assert c.paired.n == 3 and c.paired.mean_diff == pytest.approx(7 / 3)
    assert c.paired.half_width == pytest.approx(T2 * math.sqrt(7 / 3) / math.sqrt(3))
    assert c.paired.t == pytest.approx(math.sqrt(7)) and c.paired.p == pytest.approx(1 - math.sqrt(7) / 3)
    assert (c.mean_a, c.mean_b) == (pytest.approx(92), pytest.approx(89.67, abs=0.01))
    md = render_comparisons([c], "md")
    assert "| patch / InvPatch / ViT (aaa111) | patch / LSTM / ViT (bbb222) | accuracy | 92.00 | 89.67 | " \
           f"2.33 ± {T2 * math.sqrt(7 / 3) / math.sqrt(3):.2f} | 2.65 | 0.118 | 3 |" in md

    (partial,) = compare(results, "aaa", "ccc")  # only the folds both have are paired
    assert partial.paired.n == 2 and partial.paired.mean_diff == pytest.approx(5.5) and partial.mean_a == 91
    (vs_majority,) = compare(results, "aaa", "majority")
    assert vs_majority.paired.mean_diff == pytest.approx(62)
    assert vs_majority.significant and "**" in render_comparisons([vs_majority], "md").splitlines()[-1]
    with pytest.raises(BenchkitError, match="matches 3 cells"):
        compare(results, "level=patch", "aaa")
    with pytest.raises(BenchkitError, match="matches no cell"):
        compare(results, "zzz", "aaa")
