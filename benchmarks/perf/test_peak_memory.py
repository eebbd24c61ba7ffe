"""Peak memory of feature extraction and training at paper scale: memory-mapped features are never loaded whole.

Paper scale is VideoMAE ViT-B/16 on 16 x 224² clips: patch tokens (8, 196, 768), 2.3 MiB per sample in float16.
Memory is measured two ways (``memory_probe``): anonymous memory, what benchkit allocates, and the resident-set
high-water mark, which also counts the pages of a memory map once read (the kernel drops those when it needs to).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from memory_probe import peaks
from training_setup import ACTIONS, SCALES, VOCABULARY, build_model

from benchkit.grid.config import TrainConfig
from benchkit.learn.training import Batches, fit
from benchkit.registry.interfaces import Features
from benchkit.storage.features import FeatureCache

PATCH = (8, 196, 768)  # VideoMAE ViT-B/16: 8 tubelet steps x 14 x 14 patches x 768
VIDEO = (16, 224, 224, 3)
MIB = 2**20
ROW = math.prod(PATCH) * 2  # bytes of one sample's float16 patch tokens
BUDGET = Batches.__dataclass_fields__["ram_budget"].default


class PaperClips:
    """``n`` uint8 clips of 16 x 224² (zeros): the dataset side of an extraction."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def video(self, index: int) -> np.ndarray:
        return np.zeros(VIDEO, dtype=np.uint8)

    def fingerprint(self) -> str:
        return f"paper-clips:{self.n}"


class PaperShapedBackbone:
    """VideoMAE ViT-B/16's output shapes without its compute, so the figure is the extraction's own memory (clips,
    outputs, the cache writer), not the model's activations (``benchkit profile`` measures those)."""

    def fingerprint(self) -> str:
        return "paper-shaped"

    def encode(self, videos: torch.Tensor) -> Features:
        b = len(videos)
        return Features(torch.randn(b, PATCH[0], PATCH[2]), torch.randn(b, *PATCH), (14, 14))


def _sparse_features(folder, samples: int) -> np.ndarray:
    """A float16 ``(samples, 8, 196, 768)`` feature file created sparse (no data written), opened memory-mapped."""
    path = folder / "patch.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(samples, *PATCH)).flush()
    return np.load(path, mmap_mode="r")


def _tokens(samples: int) -> np.ndarray:
    return np.array([VOCABULARY.encode([0] * ACTIONS, ACTIONS + 2)] * samples, dtype=np.int64)


def test_extraction_peak_memory(benchmark, record, measure, cache_dir, request):
    samples = request.config.getoption("--perf-memory-samples")
    cache = FeatureCache(cache_dir)
    extract = lambda: cache.get_or_compute(PaperClips(samples), PaperShapedBackbone(), {"name": "paper"})  # noqa: E731
    (cached, anon, rss), seconds = measure(lambda: peaks(extract), benchmark=benchmark)
    entry = (cached.patch.nbytes + cached.frame.nbytes) / MIB
    batch = 8 * (math.prod(VIDEO) + 4 * math.prod(PATCH)) / MIB  # one batch of clips and float32 patch tokens
    assert cached.computed and cached.patch.shape == (samples, *PATCH)
    assert anon < entry / 2, f"extraction held {anon:.0f} MiB for a {entry:.0f} MiB entry"
    record(benchmark, "peak memory: feature extraction (paper-shaped outputs)", samples=samples,
           entry_mib=entry, batch_mib=batch, anon_peak_mib=anon, rss_peak_mib=rss, seconds=seconds)


def test_training_data_peak_memory(benchmark, record, measure, tmp_path):
    samples = BUDGET // ROW + 100  # a fold over the 2 GiB budget
    feats, tokens = _sparse_features(tmp_path, samples), _tokens(samples)
    file_mib = feats.nbytes / MIB

    def epoch(batches: Batches) -> int:
        return sum(len(t) for _, t in batches.epoch(64, torch.Generator().manual_seed(0), drop_last=False))

    streamed = Batches(feats, tokens, np.arange(samples))
    assert streamed._rows is None, "a fold over the RAM budget is streamed from the memory map"
    seen, anon, rss = measure(lambda: peaks(lambda: epoch(streamed)), benchmark=benchmark)[0]
    assert seen == samples
    one_batch = 64 * ROW * 3 / MIB  # float16 rows + their float32 copy
    assert anon < 2 * one_batch, f"a streamed epoch held {anon:.0f} MiB; one batch is {one_batch:.0f} MiB"

    fold = BUDGET // ROW // 2  # a fold that fits: its rows are copied to RAM once
    in_ram, anon_ram, _ = peaks(lambda: Batches(feats, tokens, np.arange(fold)))
    assert in_ram._rows is not None and anon_ram < fold * ROW / MIB + one_batch
    record(benchmark, "peak memory: training data, one epoch at batch 64", samples=samples, file_mib=file_mib,
           streamed_anon_peak_mib=anon, streamed_rss_peak_mib=rss, batch_mib=one_batch,
           fits_budget_fold=fold, fits_budget_fold_mib=fold * ROW / MIB, fits_budget_anon_mib=anon_ram)


def test_training_peak_memory_paper(benchmark, registry, record, measure, tmp_path, request):
    samples = BUDGET // ROW + 100
    feats, tokens = _sparse_features(tmp_path, samples), _tokens(samples)
    batch = request.config.getoption("--perf-train-batch")
    train = np.linspace(0, samples - 1, 2 * batch).astype(np.int64)  # two steps, rows spread over the file
    model = build_model(registry, SCALES["paper"])
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-4, device="cpu")
    train_fold = lambda: fit(model, Batches(feats, tokens, train), cfg, 0, torch.device("cpu"))  # noqa: E731
    (history, anon, rss), seconds = measure(lambda: peaks(train_fold), benchmark=benchmark)
    state = 4 * params * 4 / MIB  # float32 weights, gradients and AdamW's two moments
    assert np.isfinite(history["loss_curve"]).all()
    assert anon < feats.nbytes / MIB, "training does not hold the feature file"
    record(benchmark, "peak memory: training at paper scale (InvPatch + prefix GPT-2)", file_mib=feats.nbytes / MIB,
           batch=batch, steps=2, trainable_params=params, weights_grads_adam_mib=state, anon_peak_mib=anon,
           rss_peak_mib=rss, seconds=seconds, threads=torch.get_num_threads())
