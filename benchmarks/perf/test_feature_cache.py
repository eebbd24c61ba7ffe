"""Feature cache: a grid's second run against recomputing the backbone's features.

- The quickstart grid run twice into fresh run directories on one cache: the second run makes 0 backbone forward
  passes (``RunSummary.backbone_calls``, every fold's ``features_computed`` false) and gives the same metrics.
- ``FeatureCache.get_or_compute`` cold (the backbone over every clip, what the reference does on every run) against
  warm (the entry read back memory-mapped, checksums verified), for the quickstart's backbone and for VideoMAE
  ViT-B/16 at paper scale (random weights, 16 x 224² clips); the arrays are asserted identical.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from grids import fold_metrics, quickstart, run

from benchkit.storage.features import FeatureCache

BACKBONES = {
    "quickstart": ("synthetic-small", {}, "random-vit-tiny", {}),
    "videomae-vitb16": ("synthetic", {"videos": 1, "windows_per_video": 2, "frames": 16, "size": 224, "sprite": 24},
                        "videomae-vitb16", {"weights": "random", "device": "cpu"}),
}


def test_grid_second_run_reads_the_cache(benchmark, registry, record, measure, cache_dir, tmp_path, request):
    raw, grid = quickstart(request.config.getoption("--perf-grid-set"))
    start = time.perf_counter()
    first = run(raw, grid, tmp_path / "run1", registry)
    first_s = time.perf_counter() - start
    second, second_s = measure(lambda: run(raw, grid, tmp_path / "run2", registry), benchmark=benchmark)

    assert first.backbone_calls > 0 and not first.failed and not second.failed
    assert second.backbone_calls == 0, "the second run makes no backbone forward pass"
    records = [json.loads(p.read_text()) for p in (tmp_path / "run2/cells").glob("*/fold-?.json")]
    assert records and not any(r["features_computed"] for r in records)
    assert fold_metrics(second) == fold_metrics(first), "the cached features give the same numbers"
    extraction_s = sum(e["meta"]["seconds"] for e in FeatureCache(cache_dir).entries())
    record(benchmark, "feature cache: quickstart grid, second run",
           overrides=" ".join(request.config.getoption("--perf-grid-set")) or "none", folds=first.folds_total,
           first_run_s=first_s, first_backbone_calls=first.backbone_calls, extraction_s=extraction_s,
           second_run_s=second_s, second_backbone_calls=second.backbone_calls, run_speedup=first_s / second_s)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_cache_load_vs_recompute(name, benchmark, registry, record, measure, cache_dir):
    dataset_name, dataset_kwargs, backbone_name, backbone_kwargs = BACKBONES[name]
    dataset = registry.build("dataset", registry.resolve("dataset", dataset_name, dataset_kwargs))
    resolved = registry.resolve("backbone", backbone_name, backbone_kwargs)
    backbone = registry.build("backbone", resolved)
    config = {"name": resolved.entry.name, **resolved.kwargs}

    cache = FeatureCache(cache_dir)
    cold, cold_s = measure(lambda: cache.get_or_compute(dataset, backbone, config))
    passes = cache.backbone_calls
    warm, warm_s = measure(lambda: cache.get_or_compute(dataset, backbone, config), rounds=5, benchmark=benchmark)

    assert cold.computed and passes > 0
    assert not warm.computed and cache.backbone_calls == passes, "a warm entry makes no backbone forward pass"
    assert isinstance(warm.patch, np.memmap), "cached features are read memory-mapped"
    assert np.array_equal(warm.patch, cold.patch) and np.array_equal(warm.frame, cold.frame)
    record(benchmark, f"feature cache: {name}",
           dataset=f"{dataset_name} ({len(dataset)} clips {tuple(dataset.video(0).shape)})", backbone=backbone_name,
           patch_shape=tuple(warm.patch.shape), entry_mib=sum(a.nbytes for a in (warm.patch, warm.frame)) / 2**20,
           recompute_s=cold_s, recompute_backbone_calls=passes, cached_s=warm_s, cached_backbone_calls=0,
           speedup=cold_s / warm_s)
