"""Grid ``decode:``: Viterbi over the training transitions (planning) and K candidates (anticipation, ED@Z)."""

from __future__ import annotations

import itertools
import json

import pytest
from benchkit_metrics.anticipation import edit_distance_at

from benchkit.errors import PluginError
from benchkit.grid.config import parse_grid
from benchkit.grid.plan import plan
from benchkit.run.runner import run_grid
from benchkit.sequence.viterbi import transition_counts


def _grid(dataset: str, metrics: list, decode: dict) -> dict:
    return {
        "name": "decode", "dataset": dataset, "backbone": "precomputed", "level": "frame",
        "aggregator": "frame-tokens", "predictor": "transformer-decoder-tiny", "metrics": metrics,
        "protocol": {"folds": 2}, "train": {"epochs": 2, "batch_size": 16, "lr": 1e-3}, "baselines": [],
        "decode": decode,
    }


def _folds(run_dir):
    return [(json.loads(p.read_text()), json.loads(p.with_name(p.name.replace(".json", ".predictions.json"))
                                                  .read_text()))
            for p in sorted(run_dir.glob("cells/*/fold-*[0-9].json"))]


def test_viterbi_plans_only_use_transitions_seen_in_training(tmp_path, registry):
    grid = parse_grid(_grid("procedural-tiny-planning", ["planning-sr", "planning-macc"], {"viterbi": True}))
    summary = run_grid(grid, tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert not summary.failed
    dataset = registry.build("dataset", plan(grid, registry)[0].dataset)
    from benchkit.run.splits import make_splits

    splits = make_splits(dataset.groups(), grid.protocol)
    for record, preds in _folds(tmp_path / "run"):
        train = splits[record["fold"]][0]
        seen = transition_counts(dataset.step_sequences(train.tolist()), len(dataset.vocabulary.actions)) > 0
        for plan_ in preds["predictions"]:
            assert len(plan_) == 3
            assert all(seen[a, b] for a, b in itertools.pairwise(plan_)), plan_


def test_candidates_reach_the_ed_metric(tmp_path, registry):
    metrics = [{"name": "ed", "z": 4, "part": "even", "label": "ED@4 verb"}]
    grid = parse_grid(_grid("procedural-tiny-anticipation", metrics, {"candidates": 3}))
    run_grid(grid, tmp_path / "run", registry, say=lambda m: None, progress=False)
    for record, preds in _folds(tmp_path / "run"):
        assert all(len(c) == 3 for c in preds["candidates"])
        expected = edit_distance_at(preds["candidates"], preds["references"], z=4, part="even")
        assert record["metrics"]["ED@4 verb"] == pytest.approx(expected)
        greedy = edit_distance_at(preds["predictions"], preds["references"], z=4, part="even")
        with_greedy = edit_distance_at([[p, *c] for p, c in zip(preds["predictions"], preds["candidates"],
                                                                  strict=True)], preds["references"], z=4, part="even")
        assert with_greedy <= min(greedy, expected)  # min over more candidates never grows


def test_decode_needs_a_slot_predictor(tiny_grid, registry):
    tiny_grid["decode"] = {"viterbi": True}
    with pytest.raises(PluginError, match="has no logits\\(\\), which decode needs"):
        plan(parse_grid(tiny_grid), registry)


@pytest.mark.parametrize(("dataset", "metrics", "decode", "decoding"), [
    ("procedural-tiny-planning", ["planning-sr"], {"viterbi": True}, "together"),
    ("procedural-tiny-anticipation", [{"name": "ed", "z": 4, "part": "even", "label": "ED@4 verb"}],
     {"candidates": 3}, "one by one (decode.candidates: 3 samples"),
])
def test_selection_decodes_candidates_together_where_the_decoding_allows(tmp_path, registry, dataset, metrics,
                                                                         decode, decoding):
    """Viterbi decodes the candidates together (vmap over ``logits``), sampled candidates one by one; either way
    every candidate scores on validation what it scores trained and decoded alone (``vectorise: false``)."""
    raw = {**_grid(dataset, metrics, decode), "train": {"epochs": 2, "batch_size": 16, "lr": {"select": [1e-3, 3e-3]}}}
    run_grid(parse_grid(raw), tmp_path / "together", registry, say=lambda m: None, progress=False)
    alone = {**raw, "selection": {"vectorise": False}}
    run_grid(parse_grid(alone), tmp_path / "alone", registry, say=lambda m: None, progress=False)
    for (record, _), (single, _) in zip(_folds(tmp_path / "together"), _folds(tmp_path / "alone"), strict=True):
        assert record["selection"]["training"][0]["decoding"].startswith(decoding)
        assert single["selection"]["training"][0]["decoding"] == "one by one"
        assert [c["validation"] for c in record["selection"]["candidates"]] == \
            [c["validation"] for c in single["selection"]["candidates"]]
