"""Backbone FLOPs per clip and CPU feature-extraction throughput, for docs/backbones.md and docs/benchmarks.md.

Real-size architectures with random weights (``weights: random``): nothing to download.

    # FLOPs (shapes only, on the meta device: seconds on any machine), printed as a Markdown table
    pytest benchmarks/perf/test_feature_extraction.py -k flops -s -p no:cacheprovider
    # throughput: one 16-frame 256x256 uint8 clip through ``encode`` (preprocessing + forward), clips/s
    pytest benchmarks/perf/test_feature_extraction.py -k throughput -s -p no:cacheprovider

FLOPs are ``torch.utils.flop_counter.FlopCounterMode`` counts (matmuls, convolutions, attention; one multiply-add
is 2 FLOPs), MACs = FLOPs / 2, for one clip after preprocessing, without the classifier head.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchkit.errors import PluginError
from benchkit.registry.plugins import get_registry


def build(name: str, device: str = "cpu", **kwargs):
    registry = get_registry()
    with torch.device(device):
        return registry.build("backbone", registry.resolve("backbone", name, {"weights": "random", **kwargs}))


def clip_macs(backbone, frames: int, device: str = "meta") -> tuple[int, tuple[int, ...]]:
    """MACs of the model on one preprocessed clip ``(1, frames, 3, h, w)`` at the model's input size."""
    h, w = backbone.preprocess.output_size(1024, 1024)
    pixels = torch.zeros(1, frames, 3, h, w, device=device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        _, patch, _ = backbone.tokens(backbone.module, pixels)
    return counter.get_total_flops() // 2, tuple(patch.shape)


def vit_macs(tokens: int, dim: int, layers: int, mlp: int, patches: int, patch_in: int) -> int:
    """Analytic MACs of a ViT encoder: per block qkv + out (4 T D^2), MLP (2 T D M), attention (2 T^2 D); plus the
    patch embedding (patches x patch_in x D)."""
    return layers * (4 * tokens * dim**2 + 2 * tokens * dim * mlp + 2 * tokens**2 * dim) + patches * patch_in * dim


# name, frames, published GMACs (source) or None, analytic MACs or None
CASES = [
    ("timm:vit_base_patch16_224", 1, (17.6, "ViT-B/16 at 224, DeiT / timm"), vit_macs(197, 768, 12, 3072, 196, 768)),
    ("dinov2-vitb14", 16, None, 16 * vit_macs(257, 768, 12, 3072, 256, 588)),
    ("videomae-vitb16", 16, (180.0, "VideoMAE paper, ViT-B 16x224, per view"),
     vit_macs(1568, 768, 12, 3072, 1568, 1536)),
    ("clip-vitb16", 1, (17.6, "ViT-B/16 at 224"), vit_macs(197, 768, 12, 3072, 196, 768)),
    ("timesformer-base", 8, (196.0, "TimeSformer paper, 0.59 TFLOPs over 3 views of 8x224"), None),
    ("siglip-so400m", 1, None, None),
    ("vjepa2-vitl", 16, None, None),
]


@pytest.mark.parametrize(("name", "frames", "published", "analytic"), CASES, ids=[c[0] for c in CASES])
def test_backbone_flops(name, frames, published, analytic):
    try:
        get_registry().resolve("backbone", name)
    except PluginError:
        pytest.skip(f"{name} is not registered (transformers too old?)")
    macs, shape = clip_macs(build(name, "meta"), frames)
    if analytic is not None:
        assert macs == pytest.approx(analytic, rel=1e-4)
    if published is not None:
        assert macs / 1e9 == pytest.approx(published[0], rel=0.01)
    src = f"{published[0]:g} ({published[1]})" if published else "n/a"
    print(f"\n| {name} | {frames} | {tuple(shape)} | {macs / 1e9:.2f} | {2 * macs / 1e9:.2f} | {src} |")


def test_meta_count_equals_a_real_count():
    """The FLOP table is counted on the meta device; on real tensors the count is the same."""
    assert clip_macs(build("timm:vit_base_patch16_224", "meta"), 1)[0] == clip_macs(
        build("timm:vit_base_patch16_224", "cpu"), 1, device="cpu"
    )[0]


@pytest.mark.parametrize("name", ["dinov2-vitb14", "videomae-vitb16"])
def test_throughput(benchmark, name):
    backbone = build(name, device="cpu")
    clip = torch.randint(0, 256, (1, 16, 256, 256, 3), dtype=torch.uint8)
    backbone.encode(clip)  # warm-up
    benchmark.pedantic(backbone.encode, args=(clip,), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(clips_per_s=1 / seconds, threads=torch.get_num_threads(), clip="1x16x256x256x3")
    print(f"\n{name}: {1 / seconds:.3f} clips/s ({seconds:.2f} s per 16-frame clip, {torch.get_num_threads()} threads)")
