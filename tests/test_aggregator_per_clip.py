"""``per-clip``: an aggregator per clip feeding a predictor over clips (VEDiT), the cross-paper composition."""

from __future__ import annotations

import json

import pytest
import torch

from benchkit.config import parse_grid
from benchkit.errors import PluginError
from benchkit.interfaces import FeatureSpec
from benchkit.runner import run_grid


def test_each_clip_is_aggregated_alone(registry):
    spec = FeatureSpec(level="patch", dim=8, frames=3, grid=(1, 4))
    agg = registry.build("aggregator", registry.resolve("aggregator", "per-clip", {"inner": "mean"}), spec)
    x = torch.randn(2, 3, 4, 8)
    assert agg.num_tokens == 3 and agg.out_dim == 8
    torch.testing.assert_close(agg(x), x.mean(dim=2))
    lstm = registry.build("aggregator", registry.resolve("aggregator", "per-clip",
                                                          {"inner": {"name": "lstm", "hidden_size": 6}}), spec)
    out = lstm(x)
    assert out.shape == (2, 3 * lstm.inner.num_tokens, lstm.out_dim)
    x2 = x.clone()
    x2[:, 1] += 1.0  # changing clip 1 changes only clip 1's tokens
    per = lstm.inner.num_tokens
    diff = (lstm(x2) - out).abs().sum(-1)
    assert diff[:, per : 2 * per].min() > 0 and diff[:, :per].max() == 0 and diff[:, 2 * per :].max() == 0


def test_inner_must_take_frame_sequences(registry):
    spec = FeatureSpec(level="patch", dim=8, frames=2, grid=(1, 4))
    with pytest.raises(PluginError, match=r"cannot be built.*does not take a frame-level"):
        registry.build("aggregator", registry.resolve("aggregator", "per-clip", {"inner": "invpatch"}), spec)


def test_vedit_over_per_clip_tokens_runs_in_a_grid(tmp_path, registry):
    grid = parse_grid({
        "name": "cross", "dataset": "procedural-tiny-forecasting", "backbone": "precomputed", "level": "patch",
        "aggregator": {"name": "per-clip", "inner": {"name": "attention-pool"}},
        "predictor": {"name": "vedit-tiny", "steps": 2}, "metrics": ["top1"], "protocol": {"folds": 2},
        "train": {"epochs": 1, "batch_size": 32}, "baselines": [],
    })
    summary = run_grid(grid, tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert not summary.failed and summary.folds_run == 2
    record = json.loads(next((tmp_path / "run").glob("cells/*/fold-0.json")).read_text())
    assert 0 <= record["metrics"]["top1"] <= 100
