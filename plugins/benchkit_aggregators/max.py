"""``max``: element-wise max over all tokens (frames, or frames x patches) → one prefix token, no parameters
(spec invpatch.md §3, **[inferred]**: the public code calls a ``MaxpoolLayer`` it does not ship)."""

from __future__ import annotations

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl


class MaxPool(nn.Module):
    """Max pooling over every token into a single prefix token of width ``spec.dim``."""

    num_tokens = 1

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        self.out_dim = spec.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, -2).amax(dim=1, keepdim=True)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("max", MaxPool, levels=("frame", "patch"))
