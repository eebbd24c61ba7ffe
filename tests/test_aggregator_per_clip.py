"""``per-clip``: an aggregator per clip feeding a predictor over clips (VEDiT), the cross-paper composition."""

from __future__ import annotations

import json

import pytest
import torch

from benchkit.errors import PluginError
from benchkit.grid.config import parse_grid
from benchkit.registry.interfaces import FeatureSpec
from benchkit.run.runner import run_grid


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
    with pytest.raises(PluginError, match=r"cannot be built.*does not take frame-level tokens"):
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


def test_clip_frames_runs_a_patch_level_aggregator_on_each_clip(registry):
    """InvPatch compressing each 2-frame clip of an 8-frame window to one token: 4 tokens, each from its own clip."""
    torch.manual_seed(0)
    spec = FeatureSpec(level="patch", dim=16, frames=8, grid=(4, 4))
    agg = registry.build("aggregator", registry.resolve("aggregator", "per-clip",
                                                         {"inner": "invpatch-tiny", "clip_frames": 2}), spec).eval()
    assert agg.num_tokens == 4 and agg.inner.num_tokens == 1
    x = torch.randn(2, 8, 16, 16)
    out = agg(x)
    assert out.shape == (2, 4, agg.out_dim)
    x2 = x.clone()
    x2[:, 2:4] += 1.0  # frames 2 and 3 are clip 1
    diff = (agg(x2) - out).abs().sum(-1)
    assert diff[:, 1].min() > 0 and diff[:, [0, 2, 3]].max() == 0
    torch.testing.assert_close(agg(x)[:, 3], agg.inner(x[:, 6:8])[:, 0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inner": "invpatch-tiny", "clip_frames": 3}, "clip_frames=3 must divide the window's 8 frames"),
    ({"inner": "frame-tokens", "clip_frames": 2}, "does not take patch-level tokens"),
])
def test_clip_frames_errors(registry, kwargs, message):
    spec = FeatureSpec(level="patch", dim=16, frames=8, grid=(4, 4))
    with pytest.raises(PluginError, match=message):
        registry.build("aggregator", registry.resolve("aggregator", "per-clip", kwargs), spec)


def test_vedit_over_invpatch_per_clip_runs_in_a_grid(tmp_path, registry):
    """The issue's example: InvPatch compressing each clip to one token, VEDiT predicting over the clips."""
    grid = parse_grid({
        "name": "cross-invpatch", "dataset": {"name": "synthetic", "videos": 12, "windows_per_video": 2,
                                              "frames": 8, "size": 16, "sprite": 3},
        "backbone": "random-vit-tiny", "level": "patch",
        "aggregator": {"name": "per-clip", "inner": "invpatch-tiny", "clip_frames": 2},
        "predictor": {"name": "vedit-tiny", "steps": 2}, "metrics": ["accuracy"], "protocol": {"folds": 2},
        "train": {"epochs": 1, "batch_size": 8}, "baselines": [],
    })
    summary = run_grid(grid, tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert not summary.failed and summary.folds_run == 2
