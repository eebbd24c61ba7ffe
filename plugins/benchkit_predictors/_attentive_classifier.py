"""V-JEPA attentive classifier: one learned query pools a set of tokens, a linear head classifies it
(specs/vedit.md §2; facebookresearch ``vjepa2`` ``src/models/attentive_pooler.py`` and ``utils/modules.py``).

Cross-attention block: ``q = q + XAttn(q, LN1(x)); q = q + MLP(LN2(q))`` (the query itself is not normalised;
XAttn has ``q = Linear(E, E)``, ``kv = Linear(E, 2E)``, SDPA and no output projection); MLP ``E → 4E → E`` with
GELU. ``depth > 1`` puts ``depth - 1`` pre-LN self-attention blocks on the tokens **before** the cross-attention
(the paper's step-classification variant is ``depth = 4``: three self-attention blocks). Initialisation as V-JEPA:
query and every ``Linear`` of the pooler ``trunc_normal(0.02)``, zero biases, the residual output projections
divided by ``sqrt(2 · layer_id)``; the head keeps PyTorch's default initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Sequential):
    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        hidden = int(dim * ratio)
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


class SelfAttentionBlock(nn.Module):
    """Pre-LN ViT block: ``x = x + proj(SDPA(qkv(LN1(x)))); x = x + MLP(LN2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, -1))
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.kv = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, query: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        k, v = (_heads(t, self.heads) for t in self.kv(self.norm1(x)).chunk(2, -1))
        attended = F.scaled_dot_product_attention(_heads(self.q(query), self.heads), k, v)
        query = query + attended.transpose(1, 2).flatten(2)
        return query + self.mlp(self.norm2(query))


class AttentiveClassifier(nn.Module):
    """``(N, k, E)`` tokens → ``(N, queries, num_classes)`` logits: ``queries`` learned queries (V-JEPA's
    ``num_queries``; 1 in the paper) share the blocks and the head."""

    def __init__(self, dim: int, num_classes: int, heads: int = 16, depth: int = 1, mlp_ratio: float = 4.0,
                 queries: int = 1, init_std: float = 0.02) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"the attentive classifier's width {dim} is not divisible by its {heads} heads")
        if depth < 1:
            raise ValueError(f"depth counts the cross-attention block and must be >= 1, got {depth}")
        self.query = nn.Parameter(torch.zeros(1, queries, dim))
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, heads, mlp_ratio) for _ in range(depth - 1))
        self.cross = CrossAttentionBlock(dim, heads, mlp_ratio)
        self._init(init_std)
        self.head = nn.Linear(dim, num_classes)

    @torch.no_grad()
    def _init(self, std: float) -> None:
        nn.init.trunc_normal_(self.query, std=std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
        for layer_id, block in enumerate(self.blocks, start=1):
            block.proj.weight.div_(math.sqrt(2.0 * layer_id))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))
        self.cross.mlp.fc2.weight.div_(math.sqrt(2.0 * max(1, len(self.blocks))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        pooled = self.cross(self.query.expand(len(x), -1, -1), x)
        return self.head(pooled)
