"""The VEDiT denoiser: SD3-style dual-stream transformer over clip embeddings (specs/vedit.md §1, paper Algorithm 1
and Table 7; diffusers ``JointTransformerBlock``, ``FeedForward`` and ``SD3Transformer2DModel`` without text).

Trainable parameters with encoder width ``E`` and hidden width ``D`` (head_dim · heads = D):
full block ``36D² + 30D``, context-pre-only last block ``23D² + 20D``, and the wrapper (timestep embedding,
two input projections, ``norm_out``, ``proj_out``) ``3D² + (3E + 262)·D + E`` (= ``3D² + 3718D + 1152`` at
E = 1152, the spec's "extras").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchkit_predictors._adaln import LN_EPS, AdaLayerNormContinuous, AdaLayerNormZero, TimestepEmbedding
from benchkit_predictors._joint_attention import JointAttention


class FeedForward(nn.Module):
    """``Linear(D, 4D) → GELU(tanh) → Linear(4D, D)`` (diffusers ``FeedForward(activation_fn="gelu-approximate")``)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, mult * dim)
        self.fc2 = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class VEDiTBlock(nn.Module):
    """One block: AdaLayerNormZero per stream, joint attention, gated residuals, a GELU-tanh FFN per stream.

    ``context_pre_only`` (the last block): the seen stream is only normalised (``AdaLayerNormContinuous``) and read
    by the attention; it has no attention output projection and no FFN, and the block returns ``None`` for it.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, context_pre_only: bool = False, zero_init: bool = True,
                 rope_base: float = 10000.0) -> None:
        super().__init__()
        self.context_pre_only = context_pre_only
        self.norm1_target = AdaLayerNormZero(dim, zero_init)
        seen_norm = AdaLayerNormContinuous if context_pre_only else AdaLayerNormZero
        self.norm1_seen = seen_norm(dim, zero_init)
        self.attn = JointAttention(dim, heads, head_dim, context_pre_only, rope_base)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS, elementwise_affine=False)
        self.ff_target = FeedForward(dim)
        self.ff_seen = None if context_pre_only else FeedForward(dim)

    def _mlp(self, ff: FeedForward, x, gate_msa, attn, shift, scale, gate_mlp) -> torch.Tensor:
        x = x + gate_msa * attn
        return x + gate_mlp * ff(self.norm2(x) * (1 + scale) + shift)

    def forward(self, target: torch.Tensor, seen: torch.Tensor, temb: torch.Tensor, positions: torch.Tensor):
        norm_t, *mod_t = self.norm1_target(target, temb)
        if self.context_pre_only:
            attn_t, _ = self.attn(norm_t, self.norm1_seen(seen, temb), positions)
            return self._mlp(self.ff_target, target, mod_t[0], attn_t, *mod_t[1:]), None
        norm_s, *mod_s = self.norm1_seen(seen, temb)
        attn_t, attn_s = self.attn(norm_t, norm_s, positions)
        target = self._mlp(self.ff_target, target, mod_t[0], attn_t, *mod_t[1:])
        seen = self._mlp(self.ff_seen, seen, mod_s[0], attn_s, *mod_s[1:])
        return target, seen


class VEDiTTransformer(nn.Module):
    """Velocity model ``v(x_target, t | seen)`` in encoder space: ``Linear(E, D)`` input projections for the target
    and seen streams, ``layers`` blocks (the last one context-pre-only), ``norm_out`` (AdaLayerNormContinuous) and
    ``proj_out = Linear(D, E)``."""

    def __init__(self, encoder_dim: int, dim: int = 2048, layers: int = 12, head_dim: int = 64,
                 heads: int | None = None, zero_init: bool = True, rope_base: float = 10000.0) -> None:
        super().__init__()
        heads = heads or dim // head_dim
        if layers < 1:
            raise ValueError(f"VEDiT needs at least one block, got layers={layers}")
        if heads * head_dim != dim:
            raise ValueError(f"heads x head_dim must equal the width: {heads} x {head_dim} != {dim}")
        self.time = TimestepEmbedding(dim)
        self.proj_target = nn.Linear(encoder_dim, dim)
        self.proj_seen = nn.Linear(encoder_dim, dim)
        self.blocks = nn.ModuleList(
            VEDiTBlock(dim, heads, head_dim, context_pre_only=i == layers - 1, zero_init=zero_init,
                       rope_base=rope_base)
            for i in range(layers)
        )
        self.norm_out = AdaLayerNormContinuous(dim, zero_init)
        self.proj_out = nn.Linear(dim, encoder_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, seen: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``x (B, Nt, E)`` noisy targets, ``t (B,)`` on the 0..1000 scale, ``seen (B, Ns, E)``, ``positions
        (B or 1, Nt + Ns)`` ordered [target, seen] → velocity ``(B, Nt, E)``."""
        temb = self.time(t)
        target, context = self.proj_target(x), self.proj_seen(seen)
        for block in self.blocks:
            target, context = block(target, context, temb, positions)
        return self.proj_out(self.norm_out(target, temb))
