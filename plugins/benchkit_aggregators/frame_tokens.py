"""``frame-tokens``: the per-frame CLS tokens used directly as a T-token prefix (InvPatch Table I row 1, the
ClipCap-inspired "Frame Embeddings" decoder input, spec invpatch.md §3). No parameters; frame level only."""

from __future__ import annotations

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl


class FrameTokens(nn.Module):
    """Identity: ``(B, T, D)`` frame tokens are the ``T`` prefix tokens."""

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        self.out_dim = spec.dim
        self.num_tokens = spec.frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@hookimpl
def benchkit_register(registry):
    registry.aggregator("frame-tokens", FrameTokens, levels=("frame",))
