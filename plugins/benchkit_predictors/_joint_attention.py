"""Joint attention of the target and seen streams (specs/vedit.md §1; paper Algorithm 1 = diffusers
``JointAttnProcessor2_0``, with the algorithm's missing head split and RoPE dimension fixed).

Target tokens go through ``to_q/k/v``, seen tokens through ``add_q/k/v`` (all ``Linear(D, H·head_dim)`` with bias);
the two are concatenated as ``[target, seen]``, split into heads, rotated by RoPE at their clip positions and
attended without a mask; the result is split back: target → ``to_out``, seen → ``add_out``. A context-pre-only
attention (SD3's last block) has no ``add_out``: the seen stream's output is not used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchkit_predictors._rope import RotaryEmbedding


class JointAttention(nn.Module):
    def __init__(
        self, dim: int, heads: int, head_dim: int = 64, context_pre_only: bool = False, rope_base: float = 10000.0
    ) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner) for _ in range(3))
        self.add_q, self.add_k, self.add_v = (nn.Linear(dim, inner) for _ in range(3))
        self.to_out = nn.Linear(inner, dim)
        self.add_out = None if context_pre_only else nn.Linear(inner, dim)
        self.rope = RotaryEmbedding(head_dim, rope_base)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)  # (B, H, N, head_dim)

    def forward(
        self, target: torch.Tensor, seen: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``target (B, Nt, D)``, ``seen (B, Ns, D)``, ``positions (B or 1, Nt + Ns)`` as ``cat(target, seen)``."""
        nt = target.shape[1]
        q = self._heads(torch.cat([self.to_q(target), self.add_q(seen)], 1))
        k = self._heads(torch.cat([self.to_k(target), self.add_k(seen)], 1))
        v = self._heads(torch.cat([self.to_v(target), self.add_v(seen)], 1))
        out = F.scaled_dot_product_attention(self.rope(q, positions), self.rope(k, positions), v)
        out = out.transpose(1, 2).flatten(2)
        seen_out = None if self.add_out is None else self.add_out(out[:, nt:])
        return self.to_out(out[:, :nt]), seen_out
