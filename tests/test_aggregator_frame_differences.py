"""``frame-differences``: an inner aggregator over the changes between consecutive frames."""

from __future__ import annotations

import pytest
import torch

from benchkit.errors import PluginError
from benchkit.registry.interfaces import FeatureSpec


def _build(registry, spec, **kwargs):
    return registry.build("aggregator", registry.resolve("aggregator", "frame-differences", kwargs), spec)


def test_the_inner_aggregator_sees_consecutive_differences(registry):
    spec = FeatureSpec(level="patch", dim=8, frames=4, grid=(2, 2))
    x = torch.randn(3, 4, 4, 8)
    per_frame = _build(registry, spec, inner={"name": "per-clip", "inner": "mean"})
    assert per_frame.num_tokens == 3 and per_frame.out_dim == 8
    torch.testing.assert_close(per_frame(x), (x[:, 1:] - x[:, :-1]).mean(dim=2))
    still = x[:, :1].expand(-1, 4, -1, -1)  # nothing moves: every difference is zero
    assert per_frame(still).abs().max() == 0
    frames = _build(registry, FeatureSpec(level="frame", dim=8, frames=4, grid=(1, 1)), inner="frame-tokens")
    y = torch.randn(3, 4, 8)
    torch.testing.assert_close(frames(y), y[:, 1:] - y[:, :-1])


def test_invpatch_inside_is_built_for_one_frame_fewer(registry):
    spec = FeatureSpec(level="patch", dim=16, frames=4, grid=(4, 4))
    agg = _build(registry, spec, inner="invpatch-tiny").eval()
    assert agg.inner.frame_grid == (1, 3) and agg.num_tokens == 1
    assert agg(torch.randn(2, 4, 16, 16)).shape == (2, 1, agg.out_dim)


@pytest.mark.parametrize(("spec", "kwargs", "message"), [
    (FeatureSpec(level="patch", dim=8, frames=1, grid=(2, 2)), {}, "needs at least 2 frames, got 1"),
    (FeatureSpec(level="frame", dim=8, frames=4, grid=(1, 1)), {"inner": "invpatch-tiny"},
     "'invpatch-tiny' does not take frame-level tokens"),
])
def test_bad_inputs_are_one_line_errors(registry, spec, kwargs, message):
    with pytest.raises(PluginError, match=message):
        _build(registry, spec, **kwargs)
