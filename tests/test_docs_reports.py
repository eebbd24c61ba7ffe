"""docs/reports.md's notebook example (load, pivot, plot) runs as written, on a synthetic run directory."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from report_runs import cell, write_run

DOC = Path(__file__).resolve().parents[1] / "docs" / "reports.md"


def test_notebook_example_runs(tmp_path, monkeypatch):
    text = DOC.read_text()
    (code,) = re.findall(r"In a notebook .*?```python\n(.*?)```", text, re.S)
    run = write_run(tmp_path / "quickstart", [
        cell(f"{level}-{agg}", {"accuracy": [base + i for i in range(3)]}, level=level, aggregator=agg)
        for level, agg, base in [("frame", "Mean", 40), ("frame", "LSTM", 45), ("patch", "Mean", 50),
                                 ("patch", "InvPatch", 60)]
    ])
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.replace("runs/quickstart", str(run)), str(DOC), "exec"), namespace)
    table = namespace["table"]
    assert table.loc["InvPatch", "patch"] == 61 and table.loc["LSTM", "frame"] == 46
    assert list(table.columns) == ["frame", "patch"] and sorted(table.index) == ["InvPatch", "LSTM", "Mean"]
    assert (tmp_path / "accuracy-by-level.png").stat().st_size > 1000
    plt.close("all")
