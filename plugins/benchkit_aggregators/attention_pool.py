"""``attention-pool``: rank-1 attentional pooling (Girdhar & Ramanan, NeurIPS 2017) over all tokens → one prefix
token (spec invpatch.md §3, **[inferred]**).

``w = softmax(X u)`` over the N tokens (frames, or frames x patches, flattened), output ``sum_i w_i x_i`` of width
``spec.dim``; the only parameter is the vector ``u`` (no bias: a bias cancels in the softmax and would never get a
gradient). ``u`` starts at zero, so training starts from mean pooling.

Reference: the public code builds ``AttentionPool(dim=prefix_size)`` and reshapes its output to one token of the
decoder width, but the class itself is missing from the repository, so nothing more specific can be followed.
Difference from Girdhar & Ramanan: their rank-1 form scores ``(X a_k)^T (X b)`` with unnormalised bottom-up weights
``X b`` and a class-specific top-down ``a_k``; here there are no classes, only the bottom-up map, softmax-normalised
as the spec says, so the output stays on the scale of the input tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl


class AttentionPool(nn.Module):
    """Softmax-weighted sum of all tokens with weights from one learned scoring vector ``u``."""

    num_tokens = 1

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        self.out_dim = spec.dim
        self.u = nn.Parameter(torch.zeros(spec.dim))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, N)`` over the flattened tokens; each row sums to 1."""
        return torch.softmax(x.flatten(1, -2) @ self.u, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights(x)
        return torch.einsum("bn,bnd->bd", w, x.flatten(1, -2)).unsqueeze(1)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("attention-pool", AttentionPool, levels=("frame", "patch"))
