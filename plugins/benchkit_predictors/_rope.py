"""Rotary position embeddings over clip positions (specs/vedit.md §1, joint attention).

The semantics of ``torchtune.modules.RotaryPositionalEmbeddings(dim=head_dim, base=10000)``: the head dimension
is split into interleaved pairs ``(x[2j], x[2j+1])``, each rotated by the angle ``pos · θ_j`` with
``θ_j = base^(-2j / head_dim)``. Positions may be any integers (or floats), one per token and sample, so seen and
target tokens can take their clip's index however the clips are laid out.
"""

from __future__ import annotations

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    """Rotate queries or keys ``(B, H, N, head_dim)`` by positions ``(B or 1, N)``."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
        self.head_dim, self.base = head_dim, base
        theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("theta", theta.float(), persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        angles = positions.to(self.theta)[:, None, :, None] * self.theta  # (B, 1, N, head_dim / 2)
        cos, sin = angles.cos(), angles.sin()
        pairs = x.float().unflatten(-1, (-1, 2))
        even, odd = pairs[..., 0], pairs[..., 1]
        rotated = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1)
        return rotated.flatten(-2).type_as(x)
