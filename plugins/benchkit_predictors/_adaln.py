"""Timestep embedding and the adaptive layer norms that it modulates (specs/vedit.md §1; diffusers
``embeddings.Timesteps`` + ``TimestepEmbedding``, ``normalization.AdaLayerNormZero`` and ``AdaLayerNormContinuous``).

Every norm here is ``LayerNorm(eps=1e-6)`` without affine parameters; all modulation comes from ``temb``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6


def timestep_sinusoid(t: torch.Tensor, channels: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """SD3's ``Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=0)``: ``channels / 2`` frequencies
    ``exp(-ln(max_period) · i / (channels / 2))`` of ``t`` (on the 0..1000 scale), ordered [cos, sin]."""
    half = channels // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TimestepEmbedding(nn.Module):
    """``temb = Linear(D, D)(SiLU(Linear(256, D)(sinusoid(t))))``, one per model, shared by all blocks."""

    def __init__(self, dim: int, channels: int = 256) -> None:
        super().__init__()
        self.channels = channels
        self.linear_1 = nn.Linear(channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = timestep_sinusoid(t, self.channels).to(self.linear_1.weight.dtype)
        return self.linear_2(F.silu(self.linear_1(x)))


class AdaLayerNormZero(nn.Module):
    """``e = Linear(D, 6D)(SiLU(temb))`` → shift/scale/gate for attention and MLP; returns
    ``LN(x)(1 + scale_msa) + shift_msa``, ``gate_msa``, ``shift_mlp``, ``scale_mlp``, ``gate_mlp`` (each ``(B, 1, D)``).
    ``zero_init`` zeroes the modulation (DiT's adaLN-Zero): every block starts as the identity."""

    def __init__(self, dim: int, zero_init: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 6 * dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS, elementwise_affine=False)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.linear(F.silu(temb))[:, None].chunk(6, -1)
        return self.norm(x) * (1 + scale_msa) + shift_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNormContinuous(nn.Module):
    """``LN(x)(1 + scale) + shift`` with ``scale, shift = Linear(D, 2D)(SiLU(temb))`` (in that order): the seen
    stream's norm in the context-pre-only block and the final ``norm_out``."""

    def __init__(self, dim: int, zero_init: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS, elementwise_affine=False)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(F.silu(temb))[:, None].chunk(2, -1)
        return self.norm(x) * (1 + scale) + shift
