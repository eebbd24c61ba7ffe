"""Shared set-up of the training benchmarks: a cell's model built through the registry, and memory-mapped float16
features of the shape its backbone writes, as the feature cache stores them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS

from benchkit.learn.training import CellModel
from benchkit.registry.interfaces import FeatureSpec, PredictorSpec
from benchkit.registry.plugins import Registry
from benchkit.sequence.vocabulary import Vocabulary

VOCABULARY = Vocabulary(MUGEN_ACTIONS, delimiter=True)
ACTIONS = 16  # per target sequence: BOS, 16 actions, EOS


@dataclass(frozen=True)
class Scale:
    aggregator: str
    predictor: str
    spec: FeatureSpec
    what: str


SCALES = {
    # VideoMAE ViT-B/16, 16 frames at 224², tubelets of 2: 8 x 14 x 14 patch tokens of 768 (spec invpatch.md §1)
    "paper": Scale("invpatch-paper", "prefix-gpt2-paper", FeatureSpec("patch", 768, 8, (14, 14)),
                   "InvPatch + prefix GPT-2 at paper width, VideoMAE ViT-B/16 features (8 x 14 x 14 x 768)"),
    # random-vit-tiny on the quickstart's synthetic-small: 8 frames x 4 x 4 patches of 64
    "quickstart": Scale("invpatch-tiny", "prefix-gpt2-tiny", FeatureSpec("patch", 64, 8, (4, 4)),
                        "the quickstart's invpatch-tiny + prefix-gpt2-tiny (8 x 4 x 4 x 64 features)"),
}


def build_model(registry: Registry, scale: Scale, seed: int = 0) -> CellModel:
    """Aggregator and predictor as ``FoldRunner.run`` builds them, from their presets."""
    torch.manual_seed(seed)
    aggregator = registry.build("aggregator", registry.resolve("aggregator", scale.aggregator, {}), scale.spec)
    pspec = PredictorSpec(aggregator.out_dim, aggregator.num_tokens, VOCABULARY, ACTIONS + 2)
    return CellModel(aggregator, registry.build("predictor", registry.resolve("predictor", scale.predictor, {}), pspec))


def write_features(folder: Path, spec: FeatureSpec, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(features, tokens)``: ``patch.npy`` float16 ``(samples, T, P, D)`` written chunk by chunk and reopened
    memory-mapped (as ``FeatureCache.load`` does), and encoded random action sequences of ``ACTIONS`` actions."""
    rng = np.random.default_rng(seed)
    path = folder / "patch.npy"
    shape = (samples, spec.frames, spec.patches, spec.dim)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=shape)
    for lo in range(0, samples, 16):
        out[lo : lo + 16] = rng.standard_normal((min(16, samples - lo), *shape[1:]), dtype=np.float32)
    out.flush()
    del out
    tokens = np.array([VOCABULARY.encode(rng.integers(0, len(MUGEN_ACTIONS), ACTIONS).tolist(), ACTIONS + 2)
                       for _ in range(samples)], dtype=np.int64)
    return np.load(path, mmap_mode="r"), tokens
