"""The ``precomputed`` identity backbone and its round trip through the feature cache with a feature dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchkit_backbones.precomputed import Precomputed
from benchkit_datasets.procedural_synthetic import ProceduralSynthetic

from benchkit.errors import PluginError
from benchkit.storage.features import FeatureCache


def test_encode_frame_is_the_mean_over_tokens():
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    out = Precomputed().encode(x)
    assert out.grid == (1, 2) and out.frame.shape == (2, 3, 4) and out.patch.shape == (2, 3, 2, 4)
    torch.testing.assert_close(out.patch, x)
    torch.testing.assert_close(out.frame[0, 0], torch.tensor([2.0, 3.0, 4.0, 5.0]))  # tokens 0..3 and 4..7
    normed = Precomputed(normalize=True).encode(x)
    torch.testing.assert_close(normed.patch.norm(dim=-1), torch.ones(2, 3, 2))


def test_fingerprint_is_constant_plus_options():
    assert Precomputed().fingerprint() == Precomputed().fingerprint()
    assert Precomputed().fingerprint() != Precomputed(normalize=True).fingerprint()


def test_frames_are_refused_in_one_line():
    with pytest.raises(PluginError, match="float \\(B, C, k, E\\) clip embeddings"):
        Precomputed().encode(torch.zeros(1, 2, 8, 8, 3, dtype=torch.uint8))


def test_feature_cache_round_trip(tmp_path):
    ds = ProceduralSynthetic(task="forecasting", videos=2, dim=8, tokens=3)
    cache, cfg = FeatureCache(tmp_path), {"plugin": "precomputed", "kwargs": {}}
    first = cache.get_or_compute(ds, Precomputed(), cfg, batch_size=16)
    n = len(ds)
    assert first.computed and cache.backbone_calls == -(-n // 16)
    assert first.patch.shape == (n, 6, 3, 8) and first.frame.shape == (n, 6, 8) and first.grid == (1, 3)
    assert first.patch.dtype == np.float16
    np.testing.assert_allclose(first.patch[5], ds.video(5), atol=2e-3)
    np.testing.assert_allclose(first.frame[5], ds.video(5).mean(axis=1), atol=2e-3)
    again = FeatureCache(tmp_path)
    second = again.get_or_compute(ds, Precomputed(), cfg)
    assert not second.computed and again.backbone_calls == 0 and second.key == first.key
    other = ProceduralSynthetic(task="planning", videos=2, dim=8)
    assert cache.key(other, Precomputed(), cfg) != first.key
