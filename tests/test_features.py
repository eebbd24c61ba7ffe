from __future__ import annotations

import json

import numpy as np
import pytest
from benchkit_backbones.random_vit import RandomViT
from benchkit_datasets.synthetic import SyntheticMoves

from benchkit.storage.features import FeatureCache


@pytest.fixture
def parts(tmp_path):
    ds = SyntheticMoves(videos=3, windows_per_video=2, frames=4, size=16, sprite=3)
    bb = RandomViT(image_size=16, patch=4, dim=8, depth=1, heads=2)
    return FeatureCache(tmp_path / "c"), ds, bb, {"plugin": "random-vit", "kwargs": {"dim": 8}}


def test_extract_then_reuse_without_backbone_calls(parts):
    cache, ds, bb, cfg = parts
    first = cache.get_or_compute(ds, bb, cfg, batch_size=4)
    assert first.computed and cache.backbone_calls == 2
    assert first.frame.shape == (6, 4, 8) and first.patch.shape == (6, 4, 16, 8) and first.grid == (4, 4)
    assert first.frame.dtype == np.float16 and isinstance(first.patch, np.memmap)
    again = FeatureCache(cache.root)
    second = again.get_or_compute(ds, bb, cfg)
    assert not second.computed and again.backbone_calls == 0
    np.testing.assert_array_equal(first.patch, second.patch)


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_damaged_entry_is_detected_and_rebuilt(parts, damage, caplog):
    cache, ds, bb, cfg = parts
    entry = cache.get_or_compute(ds, bb, cfg)
    folder = cache.dir / entry.key
    path = folder / "patch.npy"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "flip":
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        (folder / "meta.json").write_text("{")
    fresh = FeatureCache(cache.root)
    rebuilt = fresh.get_or_compute(ds, bb, cfg)
    assert rebuilt.computed and fresh.backbone_calls > 0
    assert "damaged" in caplog.text
    np.testing.assert_array_equal(rebuilt.patch, entry.patch if damage == "meta" else rebuilt.patch)
    assert json.loads((folder / "meta.json").read_text())["samples"] == 6


def test_key_depends_on_backbone_and_data(parts):
    cache, ds, bb, cfg = parts
    other_bb = RandomViT(image_size=16, patch=4, dim=8, depth=1, heads=2, seed=1)
    other_ds = SyntheticMoves(videos=3, windows_per_video=2, frames=4, size=16, sprite=3, seed=1)
    keys = {cache.key(ds, bb, cfg), cache.key(ds, other_bb, cfg), cache.key(other_ds, bb, cfg)}
    assert len(keys) == 3


def test_prune(parts):
    cache, ds, bb, cfg = parts
    entry = cache.get_or_compute(ds, bb, cfg)
    assert [e["key"] for e in cache.entries()] == [entry.key]
    assert cache.prune([entry.key[:6]]) == [entry.key] and cache.entries() == []


@pytest.mark.parametrize("depth", [0, 2])
def test_random_vit_shapes_and_determinism(depth):
    import torch

    videos = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8)
    a = RandomViT(image_size=16, patch=4, dim=8, depth=depth, heads=2)
    out = a.encode(videos)
    assert out.frame.shape == (2, 3, 8) and out.patch.shape == (2, 3, 16, 8) and out.grid == (4, 4)
    b = RandomViT(image_size=16, patch=4, dim=8, depth=depth, heads=2)
    assert a.fingerprint() == b.fingerprint()
    torch.testing.assert_close(out.patch, b.encode(videos).patch)
    assert not any(p.requires_grad for p in a.parameters())


def test_second_grid_over_the_same_backbone_and_dataset_runs_no_forward_pass(tmp_path, tiny_grid, registry):
    from benchkit.grid.config import parse_grid
    from benchkit.run.runner import run_grid

    tiny_grid.update(cache_dir=str(tmp_path / "cache"), level=["frame"], protocol={"folds": 2, "seed": 0})
    first = run_grid(parse_grid(tiny_grid), tmp_path / "a", registry, say=lambda m: None, progress=False)
    assert first.backbone_calls > 0 and first.folds_run == 2
    tiny_grid.update(name="other", aggregator=["max"])  # another grid: same backbone and dataset, new cells
    second = run_grid(parse_grid(tiny_grid), tmp_path / "b", registry, say=lambda m: None, progress=False)
    assert second.folds_run == 2 and second.backbone_calls == 0
