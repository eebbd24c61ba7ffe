"""``gem``: generalised-mean pooling over all tokens → one prefix token (spec invpatch.md §3, **[inferred]** from
cirtorch ``layers/pooling.py``; the public InvPatch code calls a ``GeM`` it does not ship).

``(clamp(x, min=eps) ** p).mean() ** (1/p)`` over the frames (or frames x patches) of each channel, with ``p``
learnable and initialised to 3. The clamp zeroes every negative feature: CNN features are post-ReLU, ViT features
are not, so roughly half of a ViT's channel values are discarded. That is the reference behaviour and is kept.
"""

from __future__ import annotations

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl


class GeM(nn.Module):
    """GeM pooling with one learnable exponent shared by all channels; ``p=1`` is the mean of clamped values."""

    num_tokens = 1

    def __init__(self, spec: FeatureSpec, *, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.out_dim = spec.dim
        self.eps = eps
        self.p = nn.Parameter(torch.full((1,), float(p)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, -2).clamp(min=self.eps)
        return x.pow(self.p).mean(dim=1, keepdim=True).pow(1.0 / self.p)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("gem", GeM, levels=("frame", "patch"))
