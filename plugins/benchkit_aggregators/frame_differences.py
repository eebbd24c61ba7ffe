"""``frame-differences``: any aggregator run on the changes between consecutive frames, ``x[t+1] - x[t]``.

Tokens ``(B, T, P, D)`` (patch level) or ``(B, T, D)`` (frame level) become ``T - 1`` difference frames of the same
shape, each patch (or frame token) compared with itself one frame later, and ``inner`` (an aggregator name, preset,
or mapping with ``name``, built for ``T - 1`` frames) aggregates them. No parameters of its own.

It puts a comparison over time before whatever the inner aggregator pools over space: run on InvPatch, whose CCT
summarises each frame before its frame ViT compares frames, it asks whether that order of pooling is what limits
InvPatch on features where motion is a small change of a patch token (docs/synthetic.md, "InvPatch at the paper's
geometry"). Neither paper uses it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl
from benchkit_aggregators._inner import build_inner


class FrameDifferences(nn.Module):
    """An inner aggregator over the changes between consecutive frames, ``x[:, 1:] - x[:, :-1]``."""

    def __init__(self, spec: FeatureSpec, inner: str | dict[str, Any] = "mean") -> None:
        super().__init__()
        if spec.frames < 2:
            raise ValueError(f"frame-differences needs at least 2 frames, got {spec.frames}")
        self.inner = build_inner(inner, replace(spec, frames=spec.frames - 1), "")
        self.num_tokens = self.inner.num_tokens
        self.out_dim = self.inner.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x[:, 1:] - x[:, :-1])


@hookimpl
def benchkit_register(registry):
    registry.aggregator("frame-differences", FrameDifferences, levels=("frame", "patch"))
