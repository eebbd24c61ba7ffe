"""``per-clip``: any aggregator applied to each clip (or frame) on its own → one token per clip.

At the patch level the tokens are ``(B, C, k, D)``: ``C`` clips of ``k`` tokens each for the precomputed clip
features of the procedural datasets (spec vedit.md §3: each clip's frames → k tokens), or ``T`` frames of ``P``
patches for a video backbone. ``per-clip`` builds the ``inner`` aggregator for a frame-level sequence of ``k``
tokens, runs it on every clip (one weight set shared by all clips) and returns its tokens clip after clip:
``(B, C * inner.num_tokens, inner.out_dim)``. This is how a clip compressor (attention pooling, an LSTM, NetVLAD,
mean) feeds a predictor over clips such as VEDiT — the cross-paper composition neither paper ran.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchkit.hookspecs import hookimpl
from benchkit.interfaces import FeatureSpec


class PerClip(nn.Module):
    """Aggregate each clip's ``k`` tokens with ``inner`` (a frame-level aggregator name, preset, or mapping)."""

    def __init__(self, spec: FeatureSpec, inner: str | dict[str, Any] = "mean") -> None:
        super().__init__()
        from benchkit.plugins import get_registry

        registry = get_registry()
        name, kwargs = (inner, {}) if isinstance(inner, str) else (inner["name"], {
            k: v for k, v in inner.items() if k != "name"})
        resolved = registry.resolve("aggregator", name, kwargs)
        if "frame" not in resolved.entry.meta.get("levels", ()):
            raise ValueError(f"inner aggregator {name!r} does not take a frame-level token sequence")
        clip_spec = FeatureSpec(level="frame", dim=spec.dim, frames=spec.patches, grid=(1, 1))
        self.inner = registry.build("aggregator", resolved, clip_spec)
        self.clips = spec.frames
        self.num_tokens = spec.frames * self.inner.num_tokens
        self.out_dim = self.inner.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, k, d = x.shape
        out = self.inner(x.reshape(b * c, k, d))  # (B*C, n, out_dim)
        return out.reshape(b, c * out.shape[1], out.shape[2])


@hookimpl
def benchkit_register(registry):
    registry.aggregator("per-clip", PerClip, levels=("patch",))
