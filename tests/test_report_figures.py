"""Figures from synthetic run directories: sensitivity curves with CI error bars, pooled confusion matrices on a log
scale, metric-vs-cost scatter; valid PNG and SVG files."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.colors import LogNorm
from report_runs import ACCURACY, cell, write_run

from benchkit.errors import BenchkitError
from benchkit.report.figures import build_plots, figure_bytes, save_plots
from benchkit.report.results import load_results

T2 = 4.302652729911275  # t(0.975, 2)


def sweep_run(tmp_path):
    cells = [
        cell(f"{d}-{a}-{f}", {"accuracy": [base + 10 * f - 1, base + 10 * f, base + 10 * f + 1 + (a == "Mean")]},
             dataset=d, aggregator=a, train_fraction=f)
        for d in ("MUGEN", "BIMACS") for a, base in (("Mean", 40), ("InvPatch", 80)) for f in (1.0, 0.5, 0.1)
    ]
    return write_run(tmp_path / "run", cells, sweep=("train_fraction",))


def test_sensitivity_curve_per_dataset_with_95ci_error_bars(tmp_path):
    results = load_results(sweep_run(tmp_path))
    (plot,) = build_plots(results, kinds=["sensitivity"])
    assert plot.name == "sensitivity-train_fraction" and "95% CI" in plot.caption
    axes = plot.figure.axes
    assert [ax.get_title() for ax in axes] == ["MUGEN", "BIMACS"]
    ax = axes[0]
    assert ax.get_xlabel() == "training set fraction" and ax.get_ylabel() == "accuracy (%)"
    series = {c.get_label(): c for c in ax.containers}
    assert set(series) == {"Mean", "InvPatch"}
    line, _caps, (bars,) = series["InvPatch"].lines
    assert list(line.get_xdata()) == [0.1, 0.5, 1.0]  # sorted by the swept value
    assert list(line.get_ydata()) == pytest.approx([81, 85, 90])
    half = [abs(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
    assert half == pytest.approx([T2 / math.sqrt(3)] * 3)  # s = 1 over 3 folds
    _, _, (mean_bars,) = series["Mean"].lines
    (low, high), sd = mean_bars.get_segments()[0], math.sqrt(7 / 3)  # folds -1, 0, +2 around 40 + 10 f
    assert (high[1] - low[1]) / 2 == pytest.approx(T2 * sd / math.sqrt(3))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "0.5", "1"]
    low, high = ax.get_ylim()  # the series are offset on screen, and the axes still span every error bar
    assert low < 40 + 1 - T2 * sd / math.sqrt(3) and high > 90 + T2 / math.sqrt(3)


def test_sensitivity_point_with_missing_folds_is_open_and_one_series_is_named_in_the_title(tmp_path):
    cells = [cell("half", {"accuracy": [50, 51, 52]}, aggregator="Mean", train_fraction=0.5),
             cell("full", {"accuracy": [60, 62, None]}, aggregator="Mean", train_fraction=1, failed=[2])]
    (plot,) = build_plots(load_results(write_run(tmp_path / "run", cells, sweep=("train_fraction",))),
                          kinds=["sensitivity"])
    ax = plot.figure.axes[0]
    assert ax.get_title() == "world: patch / Mean / ViT" and plot.figure.legends == []
    (container,) = ax.containers
    assert list(container.lines[0].get_ydata()) == pytest.approx([51, 61])
    open_markers = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert [list(line.get_xdata()) for line in open_markers] == [[1]]


def write_predictions(run, cid, folds):
    for k, (preds, refs) in enumerate(folds):
        (run / "cells" / cid / f"fold-{k}.predictions.json").write_text(
            json.dumps({"predictions": preds, "references": refs}))


def test_confusion_matrix_pooled_over_folds_on_a_log_scale(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("best", {"accuracy": [90, 91, 92]}, aggregator="InvPatch"),
        cell("worse", {"accuracy": [50, 51, 52]}, aggregator="Mean"),
    ])
    # reference left(0) twice, right(1) 7 times, up(2) once; one extra generated token (a PAD reference)
    write_predictions(run, "best", [([[0, 1, 1]], [[0, 0, 1]]), ([[1, 1, 1, 1]], [[1, 1, 1, 1]]),
                                    ([[1, 2, 1, 4]], [[1, 2, 1]])])
    (plot,) = build_plots(load_results(run), kinds=["confusion"])
    assert plot.name == "confusion-world-best"
    ax = plot.figure.axes[0]
    image = ax.images[0]
    assert isinstance(image.norm, LogNorm) and image.norm.vmin == 1
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["left", "right", "up", "down", "jump", "<pad>"]
    expected = np.zeros((6, 6), dtype=int)
    expected[0, 0] = expected[0, 1] = 1
    expected[1, 1] = 7
    expected[2, 2] = 1
    expected[5, 4] = 1  # PAD reference, "jump" generated
    data = image.get_array()
    assert np.array_equal(data.filled(0), expected) and data.mask[0, 2]  # zeros are masked (blank)
    assert [t.get_text() for t in ax.get_yticklabels()][:3] == ["left (50%)", "right (100%)", "up (100%)"]
    assert [t.get_text() for t in ax.texts] == ["1", "1", "7", "1", "1"]


def test_confusion_parts_and_id_fallback(tmp_path):
    metrics = (ACCURACY, {"name": "accuracy-left", "higher_is_better": True, "kwargs": {"part": "even"}})
    run = write_run(tmp_path / "run", [cell("c", {"accuracy": [1, 2, 3], "accuracy-left": [1, 2, 3]})],
                    metrics=metrics, actions=None)
    plots = build_plots(load_results(run), kinds=["confusion"], confusion="all")
    assert [p.name for p in plots] == ["confusion-world-c", "confusion-world-c-even"]
    labels = [t.get_text() for t in plots[0].figure.axes[0].get_xticklabels()]
    assert labels[:5] == ["0", "1", "2", "3", "4"]  # no action names in the plan: ids


def test_accuracy_against_gflops_and_latency(tmp_path):
    run = write_run(tmp_path / "run", [
        cell("a", {"accuracy": [90, 91, 92]}, aggregator="InvPatch", profile={"gflops": 54.0, "latency_ms": 41.8}),
        cell("b", {"accuracy": [70, 71, 72]}, aggregator="LSTM", profile={"gflops": 60.0, "latency_ms": 30.0}),
        cell("c", {"accuracy": [60, 61, 62]}, aggregator="Mean"),  # not profiled: left out
    ])
    (plot,) = build_plots(load_results(run), kinds=["cost"])
    assert plot.name == "cost-world"
    gflops, latency = plot.figure.axes[:2]
    assert gflops.get_xlabel() == "GFLOPs per sample" and latency.get_xlabel() == "latency (ms)"
    points = {c.get_label(): (c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0]) for c in gflops.containers}
    assert points == {"InvPatch": (54.0, 91.0), "LSTM": (60.0, 71.0)}
    assert {c.get_label(): c.lines[0].get_xdata()[0] for c in latency.containers} == {"InvPatch": 41.8, "LSTM": 30}
    no_profiles = write_run(tmp_path / "bare", [cell("a", {"accuracy": [1, 2, 3]})])
    assert build_plots(load_results(no_profiles), kinds=["cost", "sensitivity"]) == []


def test_png_and_svg_files_are_valid_and_reproducible(tmp_path):
    results = load_results(sweep_run(tmp_path))
    plots = build_plots(results)
    assert {p.name.split("-")[0] for p in plots} == {"sensitivity", "confusion"}
    paths = save_plots(plots, tmp_path / "figures")
    assert len(paths) == 2 * len(plots)
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
        else:
            assert ET.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"
            refs = re.findall(rb'href="([^"]*)"', data)
            assert all(r.startswith((b"#", b"data:image/png;base64,")) for r in refs)  # nothing external
    first, again = (figure_bytes(build_plots(results)[0].figure, "svg") for _ in range(2))
    assert first == again  # the same run gives the same file
    with pytest.raises(BenchkitError, match="unknown figure kind 'pie'"):
        build_plots(results, kinds=["pie"])
