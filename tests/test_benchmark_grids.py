"""Every grid under benchmarks/ parses and validates against the registry (paper-scale ones with their data roots
pointed at an empty folder: validation checks names, keyword arguments, levels and that the paths exist)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchkit.grid.config import load_grid
from benchkit.grid.plan import plan, resolve_metrics

GRIDS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.yaml"))
ROOTS = ("MUGEN_ROOT", "BIMACS_ROOT", "COIN_ROOT", "CROSSTASK_ROOT", "NIV_ROOT", "EGO4D_ROOT")


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_benchmark_grid(path, registry, monkeypatch, tmp_path):
    for name in ROOTS:
        monkeypatch.setenv(name, str(tmp_path))
    assert plan(load_grid(path), registry)


def _plan(name, registry, monkeypatch, tmp_path):
    for root in ROOTS:
        monkeypatch.setenv(root, str(tmp_path))
    grid = load_grid(Path(__file__).parent.parent / "benchmarks" / name)
    return grid, plan(grid, registry)


# the authors' decode length: their tokenizer's seq_len (InvPatch idm/idm_{mugen,bimacs}/exp_configurations.py)
REFERENCE_SEQ_LEN = {"invpatch_table1_mugen.yaml": 20, "invpatch_table2_bimacs.yaml": 34}


@pytest.mark.parametrize("name", sorted(REFERENCE_SEQ_LEN))
def test_invpatch_tables_run_the_reference_recipe(name, registry, monkeypatch, tmp_path):
    """Tables I and II train, decode and score as the authors' code by default (docs/decisions.md, "recipe:
    reference vs benchkit"): warm-up e/epochs, drop-path per token, decoding to seq_len, text round trip."""
    grid, cells = _plan(name, registry, monkeypatch, tmp_path)
    assert {c.config["train"]["warmup_mode"] for c in cells} == {"reference"}
    assert {c.predictor.kwargs.get("max_decode_tokens") for c in cells} == {REFERENCE_SEQ_LEN[name]}
    invpatch = [c for c in cells if c.aggregator.entry.name == "invpatch"]
    assert invpatch and {c.aggregator.kwargs.get("drop_path_mode") for c in invpatch} == {"token"}
    metrics = resolve_metrics(registry, grid)
    assert set(metrics) == {"accuracy", "precision", "bleu4", "meteor"}
    assert all(m.kwargs.get("reference_text") is True for m in metrics.values())


def test_reference_presets_are_the_paper_presets_plus_the_recipe(registry):
    """``*-reference`` presets differ from ``*-paper`` only in the recipe keys, so the models are the same."""
    presets = registry.presets
    paper = presets["aggregator"]["invpatch-paper"].kwargs
    assert presets["aggregator"]["invpatch-reference"].kwargs == {**paper, "drop_path_mode": "token"}
    paper = presets["predictor"]["prefix-gpt2-paper"].kwargs
    for dataset, seq_len in (("mugen", 20), ("bimacs", 34)):
        preset = presets["predictor"][f"prefix-gpt2-reference-{dataset}"]
        assert preset.plugin == "prefix-gpt2" and preset.kwargs == {**paper, "max_decode_tokens": seq_len}


def test_vedit_grids_follow_the_papers_setup(registry, monkeypatch, tmp_path):
    # COIN: 16 SigLIP [CLS] tokens per clip reach VEDiT, whose attentive classifier pools them
    _, cells = _plan("vedit_coin.yaml", registry, monkeypatch, tmp_path)
    assert {c.cell.level for c in cells} == {"patch"}
    aggregators = {(c.aggregator.entry.name, c.aggregator.kwargs.get("inner")) for c in cells}
    assert aggregators == {("per-clip", "frame-tokens")}
    assert {c.dataset.kwargs["tokens"] for c in cells} == {16}
    vedit = [c for c in cells if c.predictor.entry.name == "vedit"]
    assert vedit and {c.predictor.kwargs["tokens_per_clip"] for c in vedit} == {16}
    # Ego4D LTA: the Ego4D baseline transformer's blocks and width
    _, cells = _plan("vedit_ego4d_lta.yaml", registry, monkeypatch, tmp_path)
    vedit = [c for c in cells if c.predictor.entry.name == "vedit"]
    assert vedit and {(c.predictor.kwargs["layers"], c.predictor.kwargs["dim"]) for c in vedit} == {(6, 2048)}
    # planning: no row claims the SCHEMA + VEDiT composition, which benchkit does not run
    _, cells = _plan("vedit_planning.yaml", registry, monkeypatch, tmp_path)
    assert not [c.cell.predictor.display for c in cells if "w/" in c.cell.predictor.display]
