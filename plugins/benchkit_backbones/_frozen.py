"""What every pretrained-encoder backbone shares: frozen, lazily loaded, batched, mixed precision on GPU.

A subclass says how to build its ``nn.Module`` (:meth:`FrozenEncoder.build`), what identifies its weights
(:meth:`FrozenEncoder.weights_identity`) and how preprocessed clips become tokens (:meth:`FrozenEncoder.tokens`).
The model is built on first use: the feature cache asks for :meth:`fingerprint` first, and when the features are
cached no weights are loaded at all. ``encode`` runs under ``inference_mode`` with the module in ``eval()`` and
no parameter requiring grad, on ``device`` (``auto``: CUDA when present), with bf16 autocast on CUDA by default
(``precision``), ``batch_size`` videos per forward pass. The runner draws the progress bar over videos.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import torch
from torch import nn

from benchkit.api import DataError, Features, resolve_device, stable_hash
from benchkit_backbones._preprocess import Preprocess

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def state_dict_hash(module: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class FrozenEncoder:
    """Base of the Hugging Face and timm backbones; ``name`` is the registered plugin name (for messages)."""

    name = "backbone"

    def __init__(self, *, device: str, precision: str, batch_size: int | None) -> None:
        if precision not in ("auto", *PRECISIONS):
            raise ValueError(f"precision must be auto, {', '.join(PRECISIONS)}; got {precision!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device, f"backbone {self.name!r}: device")
        self.precision = ("bf16" if self.device.type == "cuda" else "fp32") if precision == "auto" else precision
        self.batch_size = batch_size
        self.preprocess: Preprocess  # set by the subclass
        self._module: nn.Module | None = None

    # -- what a subclass provides ----------------------------------------------------------------------------
    def build(self) -> nn.Module:
        raise NotImplementedError

    def weights_identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def tokens(self, model: nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """``pixels`` ``(B, T, 3, h, w)`` → frame ``(B, T', D)``, patch ``(B, T', P, D)``, grid ``(gh, gw)``."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The frozen ``nn.Module`` (built, or loaded from disk, on first access)."""
        if self._module is None:
            with torch.inference_mode(False):  # ordinary tensors, even when first used inside inference mode
                module = self.build().eval().requires_grad_(False)
            if not any(p.is_meta for p in module.parameters()):
                module = module.to(self.device)
            self._module = module
        return self._module

    def fingerprint(self) -> str:
        """Weights (content hashes or random state), preprocessing, token rule, precision: the feature-cache key."""
        payload = {
            "backbone": self.name,
            "weights": self.weights_identity(),
            "preprocess": self.preprocess.identity(),
            "precision": self.precision,
            "tokens": self.token_rule(),
        }
        return f"{self.name}:{stable_hash(payload, 32)}"

    def token_rule(self) -> str:
        """A short description of what the frame and patch rows hold (part of the fingerprint)."""
        return ""

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def encode(self, videos: torch.Tensor) -> Features:
        """``videos`` ``(B, T, H, W, 3)`` uint8 → frame ``(B, T', D)`` and patch ``(B, T', P, D)`` float32 on CPU."""
        if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != torch.uint8:
            raise DataError(
                f"backbone {self.name!r} expects videos (B, T, H, W, 3) uint8, got {tuple(videos.shape)} {videos.dtype}"
            )
        model = self.module
        b, t = videos.shape[:2]
        step = self.batch_size or b
        frames, patches, grid = [], [], (0, 0)
        with torch.inference_mode():
            for lo in range(0, b, step):
                clip = videos[lo : lo + step].to(self.device, non_blocking=True)
                n = clip.shape[0]
                pixels = self.preprocess(clip.flatten(0, 1)).unflatten(0, (n, t))  # float32, outside autocast
                with self.autocast():
                    frame, patch, grid = self.tokens(model, pixels)
                frames.append(frame.float().cpu())
                patches.append(patch.float().cpu())
        return Features(frame=torch.cat(frames), patch=torch.cat(patches), grid=tuple(int(g) for g in grid))
