"""benchmarks/gpu/run.py on a CPU with tiny shapes: it builds every composition, measures every column and prints
one table (the figures themselves are for a GPU; docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

GPU = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu"


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(GPU))
    spec = importlib.util.spec_from_file_location("gpu_run", GPU / "run.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_run", module)
    spec.loader.exec_module(module)
    return module


def table_rows(out: str) -> list[dict[str, str]]:
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def test_tiny_run_prints_one_table(script, tmp_path, capsys):
    out_json = tmp_path / "gpu.json"
    rows = script.main(["--tiny", "--device", "cpu", "--threads", "1", "--dtype", "fp32", "--compile", "off",
                        "--json", str(out_json)])
    out, selection = capsys.readouterr().out.split("## Candidates trained together")
    assert not [r["error"] for r in rows if r.get("error")]
    table = table_rows(out)
    assert [(r["model"], r["dtype"], r["compile"]) for r in table] == [("invpatch", "fp32", "off"),
                                                                      ("vedit-tiny", "fp32", "off")]
    invpatch, vedit = table
    for column in ("e2e ms (b=1)", "head ms (b=1)", "e2e seq/s (b=B)", "head seq/s (b=B)", "train step ms (b=B)",
                   "train TFLOP/s", "GFLOPs / seq", "params (M)"):
        assert float(invpatch[column]) > 0, column
    assert vedit["e2e ms (b=1)"] == "—" and float(vedit["head ms (b=1)"]) > 0  # VEDiT runs on cached features
    assert invpatch["% of peak"] == "—"  # a CPU has no entry in the peak table
    saved = json.loads(out_json.read_text())
    assert saved["command"].startswith("python benchmarks/gpu/run.py --tiny")
    assert saved["environment"]["torch_threads"] == 1 and len(saved["rows"]) == 2
    assert all(math.isfinite(r["train_tflops"]) for r in saved["rows"])
    # the selection-cost table: K = 1 (one fit) and K = 2 candidates trained together, per model
    assert [(r["model"], r["K"], r["vectorised"]) for r in table_rows(selection)] == [
        ("invpatch", "1", "—"), ("invpatch", "2", "on"), ("vedit-tiny", "1", "—"), ("vedit-tiny", "2", "on")]
    assert all(float(r["x of K = 1"]) > 0 and float(r["decode x of K = 1"]) > 0 for r in table_rows(selection))
    assert len(saved["selection"]) == 4


def test_compiled_bf16_row_and_given_peak(script, capsys):
    rows = script.main(["--tiny", "--device", "cpu", "--threads", "1", "--dtype", "bf16", "--compile", "on",
                        "--compile-backend", "eager", "--models", "vedit-tiny", "--peak-tflops", "1",
                        "--candidates", "off"])
    (row,) = rows
    assert not row.get("error") and row["compile"] is True and row["dtype"] == "bf16"
    assert row["peak_pct"] == pytest.approx(100 * row["train_tflops"])
    assert "| vedit-tiny | bf16 | on |" in capsys.readouterr().out


def test_only_candidates_saves_each_row_and_decodes_a_fallback_one_by_one(script, tmp_path, capsys, monkeypatch):
    """``--only-candidates`` skips the latency rows; the JSON is rewritten after every row (a run stopped part-way
    keeps what it measured); candidates that trained one by one (here: ``vectorise=False``) decode one by one, and
    the row says why (on the H200, 2026-12-04, VEDiT's candidates fell back and ``decode_together`` then failed)."""
    together = script.fit_together
    monkeypatch.setattr(script, "fit_together", lambda *a, **k: together(*a, **k, vectorise=False))
    out_json, seen = tmp_path / "gpu.json", []
    save = script.json.dumps
    monkeypatch.setattr(script.json, "dumps", lambda obj, **k: seen.append(len(obj["selection"])) or save(obj, **k))
    rows = script.main(["--tiny", "--device", "cpu", "--threads", "1", "--dtype", "fp32", "--models", "vedit-tiny",
                        "--only-candidates", "--json", str(out_json)])
    assert [(r["k"], r["vectorised"], r.get("reason")) for r in rows] == [
        (1, None, None), (2, False, "selection.vectorise is false")]
    assert all(r["decode_ms"] > 0 and not r.get("error") for r in rows)
    assert seen[:2] == [1, 2] and len(json.loads(out_json.read_text())["selection"]) == 2
    out = capsys.readouterr().out
    assert "(selection.vectorise is false)" in out and "| vedit-tiny | fp32 | off |" not in out
    assert "e2e ms (b=1)" not in out  # no latency table at all
    with pytest.raises(SystemExit):
        script.parse(["--tiny", "--only-candidates", "--candidates", "off"])


@pytest.mark.parametrize(("name", "dtype", "peak"), [
    ("NVIDIA H200", "bf16", 989.4), ("NVIDIA H100 PCIe", "bf16", 756.5), ("NVIDIA H100 80GB HBM3", "fp32", 66.9),
    ("NVIDIA GeForce RTX 3090", "bf16", 71.0), ("NVIDIA A100-SXM4-80GB", "bf16", 312.0), ("AMD EPYC", "bf16", None),
])
def test_device_peaks(monkeypatch, name, dtype, peak):
    monkeypatch.syspath_prepend(str(GPU))
    from device_peaks import peak_tflops

    assert peak_tflops(name, dtype)[0] == peak
