"""``mean``: mean over all tokens (frames, or frames x patches) → one prefix token, no parameters (spec §3)."""

from __future__ import annotations

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl


class MeanPool(nn.Module):
    """Mean pooling over every token into a single prefix token."""

    num_tokens = 1

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        self.out_dim = spec.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, -2).mean(dim=1, keepdim=True)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("mean", MeanPool, levels=("frame", "patch"))
