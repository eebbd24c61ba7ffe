"""Seeding, device choice, optimiser and learning-rate schedule, and the train / predict loops of one fold."""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from benchkit.errors import ConfigError
from benchkit.grid.config import TrainConfig


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def warmup_epochs(cfg: TrainConfig) -> int:
    return round(cfg.warmup * cfg.epochs)


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Per-epoch multiplier of ``lr`` (the reference steps its schedule once per epoch, spec invpatch.md §6).

    Warm-up over ``W = round(warmup * epochs)`` epochs: ``"linear"`` ramps ``(e + 1) / W`` so no epoch runs at
    lr 0 (the intended schedule); ``"reference"`` reproduces the authors' ``e / epochs`` (epoch 0 at lr 0).
    Then cosine from 1 towards 0 over the remaining epochs (``"cosine"``) or flat (``"constant"``).
    """
    epochs, w = cfg.epochs, warmup_epochs(cfg)

    def factor(e: int) -> float:
        if e < w:
            return (e + 1) / w if cfg.warmup_mode == "linear" else e / epochs
        if cfg.schedule == "constant":
            return 1.0
        progress = (e - w) / max(1, epochs - w)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


@dataclass
class Batches:
    """Shuffled mini-batches of (features, tokens) for one fold, read from (memory-mapped) arrays.

    A fold's rows are copied into RAM once when they fit in ``ram_budget`` bytes; otherwise each batch is gathered
    from the memory map, so a paper-scale feature file is never loaded whole. Rows stay in their stored dtype
    (float16) until they reach the device: half the bytes of a float32 copy through the host-to-device copy, which
    on a GPU is pinned and asynchronous, and the conversion to float32 runs on the device.
    """

    features: np.ndarray
    tokens: np.ndarray
    indices: np.ndarray
    ram_budget: int = 2 << 30

    def __post_init__(self) -> None:
        row_bytes = int(np.prod(self.features.shape[1:])) * self.features.dtype.itemsize
        self._sorted = np.sort(self.indices)
        self._rows = None
        if row_bytes * len(self.indices) <= self.ram_budget:
            self._rows = torch.from_numpy(np.ascontiguousarray(self.features[self._sorted]))

    def gather(self, idx: np.ndarray) -> torch.Tensor:
        """Rows ``idx`` (sorted) in their stored dtype, on the host."""
        if self._rows is not None:
            return self._rows[torch.from_numpy(np.searchsorted(self._sorted, idx))]
        return torch.from_numpy(np.ascontiguousarray(self.features[idx]))

    def epoch(
        self,
        batch_size: int,
        generator: torch.Generator | None,
        drop_last: bool,
        device: torch.device | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches ``(float32 features, tokens)`` on ``device`` (default: the host), rows in index order."""
        device = device or torch.device("cpu")
        n = len(self.indices)
        order = self.indices[torch.randperm(n, generator=generator).numpy()] if generator else self.indices
        if drop_last and n >= batch_size:
            n = n - n % batch_size
        for start in range(0, n, batch_size):
            with record_function("benchkit.data"):
                idx = np.sort(order[start : start + batch_size])
                x, tokens = self.gather(idx), torch.from_numpy(self.tokens[idx])
                x, tokens = _to_device(x, device).float(), _to_device(tokens, device)
            yield x, tokens


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


class Standardize(nn.Module):
    """``(x - mean) / std`` per feature dimension (the last axis), with statistics fixed at construction.

    ``train.standardize`` builds it from the training fold's rows (``Standardize.fit``), pooled over samples, frames
    and patches, so no test statistic leaks in. Frozen features often sit on a large common offset with a small
    sample-to-sample spread (a frozen random ViT on Crafter: |mean| 0.76 against a spread of 0.16 per dimension,
    frame-to-frame differences 0.09), which a weight-decayed aggregator is slow to see past; docs/decisions.md.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("scale", 1.0 / (std.float() + eps))

    @classmethod
    def fit(cls, batches: Batches, batch_size: int = 1024) -> Standardize:
        """Mean and (population) std of every dimension over the rows of ``batches``, accumulated in float64."""
        total = square = None
        count = 0
        for x, _ in batches.epoch(batch_size, None, drop_last=False):
            x = x.double().reshape(-1, x.shape[-1])
            total = x.sum(0) if total is None else total + x.sum(0)
            square = (x * x).sum(0) if square is None else square + (x * x).sum(0)
            count += len(x)
        mean = total / count
        return cls(mean, (square / count - mean * mean).clamp_min(0).sqrt())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.scale


class CellModel(nn.Module):
    """Aggregator followed by predictor: the trainable part of a cell, after an optional fixed ``Standardize``."""

    def __init__(self, aggregator: nn.Module, predictor: nn.Module, standardize: Standardize | None = None) -> None:
        super().__init__()
        self.standardize = standardize or nn.Identity()
        self.aggregator = aggregator
        self.predictor = predictor

    def prefix(self, features: torch.Tensor) -> torch.Tensor:
        """The predictor's input: the (standardized) features through the aggregator."""
        return self.aggregator(self.standardize(features))

    def loss(self, features: torch.Tensor, tokens: torch.Tensor, **options: float) -> torch.Tensor:
        """The predictor's loss; ``options`` are the train keys its loss takes (:func:`loss_options`)."""
        return self.predictor.loss(self.prefix(features), tokens, **options)

    def predict(self, features: torch.Tensor) -> list[list[int]]:
        return self.predictor.predict(self.prefix(features))


def loss_options(predictor: nn.Module, cfg: TrainConfig) -> dict[str, float]:
    """The train keys a predictor's ``loss`` receives as keyword arguments: ``label_smoothing`` when non-zero.

    Every predictor that trains with cross-entropy takes ``loss(prefix, tokens, label_smoothing=0.0)`` and passes
    it to ``F.cross_entropy``. A predictor whose loss has no such parameter (a regression loss, a third-party plugin
    written against the two-argument protocol) still works at 0; a non-zero value for it is a ``ConfigError``, since
    no key of a grid may be accepted and ignored.
    """
    if not cfg.label_smoothing:
        return {}
    parameters = inspect.signature(predictor.loss).parameters
    if "label_smoothing" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise ConfigError(
            f"train.label_smoothing={cfg.label_smoothing:g} but predictor {type(predictor).__name__}'s loss takes no "
            "label_smoothing (it does not train with cross-entropy); set train.label_smoothing: 0"
        )
    return {"label_smoothing": cfg.label_smoothing}


def fit(model: CellModel, batches: Batches, cfg: TrainConfig, seed: int, device: torch.device) -> dict:
    """Train with AdamW and the per-epoch schedule; returns the per-epoch mean loss and the wall time.

    AdamW is the fused implementation (multi-tensor kernels, on CPU and GPU, instead of a Python loop over the
    parameters); ``train.label_smoothing`` reaches the predictor's loss through :func:`loss_options`. The loss is
    summed on the device and read once per epoch, so no step waits for the device; a non-finite epoch loss raises
    ``FloatingPointError``. Each step's phases are labelled for ``torch.profiler``
    (``benchkit.data``, ``benchkit.forward``, ``benchkit.backward``, ``benchkit.optimizer``; docs/benchmarks.md).
    """
    options = loss_options(model.predictor, cfg)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return {"loss_curve": [], "train_seconds": 0.0}
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=fused
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    generator = torch.Generator().manual_seed(seed)
    curve, start = [], time.perf_counter()
    for epoch in range(cfg.epochs):
        total, count = torch.zeros((), dtype=torch.float64, device=device), 0
        for x, tokens in batches.epoch(cfg.batch_size, generator, cfg.drop_last, device):
            with record_function("benchkit.forward"):
                loss = model.loss(x, tokens, **options)
            with record_function("benchkit.backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            with record_function("benchkit.optimizer"):
                optimizer.step()
            total += loss.detach().double() * len(tokens)
            count += len(tokens)
        mean = total.item() / max(1, count)
        if not math.isfinite(mean):
            raise FloatingPointError(f"non-finite training loss ({mean}) in epoch {epoch + 1}")
        scheduler.step()
        curve.append(mean)
    return {"loss_curve": curve, "train_seconds": time.perf_counter() - start}


@torch.inference_mode()
def predict(model: CellModel, batches: Batches, batch_size: int, device: torch.device) -> list[list[int]]:
    model.to(device).eval()
    out: list[list[int]] = []
    for x, _ in batches.epoch(batch_size, None, drop_last=False, device=device):
        out.extend(model.predict(x))
    return out
