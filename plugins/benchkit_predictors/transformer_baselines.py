"""The "vanilla transformer" baselines of the procedural tasks (specs/vedit.md §4), on the same slot contract as
VEDiT (:mod:`benchkit_predictors._slot_predictor`).

- ``transformer-encoder`` — Ego4D LTA ``slowfast_trf``: prefix tokens (+ ``Linear(E, width)`` when the widths
  differ) + sinusoidal positions → dropout 0.2 → post-LN ``TransformerEncoder`` (width 2048, 8 heads, 6 layers,
  FF 2048, ReLU) → the last token → dropout 0.5 → ``n`` separate heads ``Linear(width, A)``, one per future step.
- ``transformer-decoder`` — SCHEMA's decoder: 2 post-LN layers (width 128, 32 heads, MLP ratio 2, GELU,
  dropout 0.2) of self-attention over the target queries, cross-attention to a memory and an MLP; as in SCHEMA's
  ``transformer_layer`` each attention output is dropped out and layer-normed before its residual, and every
  residual is followed by a LayerNorm. The memory is the projected prefix (SCHEMA attends to description
  features; benchkit's predictors see only the prefix) with sinusoidal positions; the queries carry sinusoidal
  positions too and are ``"learned"`` slots, ``"zeros"`` (SCHEMA's mask tokens) or ``"bracket"``
  (SCHEMA's state query ``[s_start, 0 × n, s_goal]`` from the first and last prefix tokens; the outputs of the n
  middle slots are classified). Classifier: SCHEMA's ``Linear → ReLU → Dropout → Linear``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchkit.api import PredictorSpec, hookimpl
from benchkit_predictors._slot_predictor import SlotPredictor

QUERIES = ("learned", "zeros", "bracket")


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """``(length, dim)`` Transformer positions: ``sin`` on even channels, ``cos`` on odd ones, frequencies
    ``10000^(-2i / dim)`` (SCHEMA's ``PositionalEmbedding``, Ego4D's ``PositionalEncoding``)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * freqs)
    pe[:, 1::2] = torch.cos(position * freqs[: dim // 2])
    return pe


class TransformerEncoderPredictor(SlotPredictor):
    """Ego4D-style encoder baseline: post-LN encoder over the prefix, last token, one head per target slot."""

    def __init__(self, spec: PredictorSpec, width: int = 2048, heads: int = 8, layers: int = 6, ff: int = 2048,
                 dropout: float = 0.2, head_dropout: float = 0.5) -> None:
        super().__init__(spec)
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.project = nn.Identity() if spec.prefix_dim == width else nn.Linear(spec.prefix_dim, width)
        self.register_buffer("positions", sinusoidal_positions(spec.prefix_tokens, width), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(width, heads, ff, dropout, activation="relu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head_dropout = nn.Dropout(head_dropout)
        self.heads = nn.ModuleList(nn.Linear(width, self.num_classes) for _ in range(self.num_targets))

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.project(prefix) + self.positions)
        last = self.head_dropout(self.encoder(x)[:, -1])
        return torch.stack([head(last) for head in self.heads], 1)


class SchemaAttention(nn.Module):
    """Attention → dropout → LayerNorm (SCHEMA's ``Attention``)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dropout(self.attention(query, memory, memory, need_weights=False)[0]))


class SchemaDecoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SchemaAttention(width, heads, dropout)
        self.cross_attn = SchemaAttention(width, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(width, width * mlp_ratio), nn.GELU(), nn.Dropout(dropout), nn.Linear(width * mlp_ratio, width)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        query = self.norms[0](query + self.dropout(self.self_attn(query, query)))
        query = self.norms[1](query + self.dropout(self.cross_attn(query, memory)))
        return self.norms[2](query + self.dropout(self.mlp(query)))


class TransformerDecoderPredictor(SlotPredictor):
    """SCHEMA-style 2-layer decoder baseline: target queries cross-attend to the projected prefix."""

    def __init__(self, spec: PredictorSpec, width: int = 128, heads: int = 32, layers: int = 2, mlp_ratio: int = 2,
                 dropout: float = 0.2, query: str = "learned") -> None:
        super().__init__(spec)
        if query not in QUERIES:
            raise ValueError(f"query must be one of {', '.join(QUERIES)}, got {query!r}")
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.query_mode = query
        n_queries = self.num_targets + (2 if query == "bracket" else 0)
        self.project = nn.Linear(spec.prefix_dim, width)
        self.register_buffer("memory_positions", sinusoidal_positions(spec.prefix_tokens, width), persistent=False)
        self.register_buffer("query_positions", sinusoidal_positions(n_queries, width), persistent=False)
        self.queries = nn.Parameter(torch.randn(1, self.num_targets, width) * 0.02) if query == "learned" else None
        self.layers = nn.ModuleList(SchemaDecoderLayer(width, heads, mlp_ratio, dropout) for _ in range(layers))
        self.classifier = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, self.num_classes)
        )

    def _queries(self, memory: torch.Tensor) -> torch.Tensor:
        b, width = len(memory), memory.shape[-1]
        if self.queries is not None:
            return self.queries.expand(b, -1, -1)
        slots = memory.new_zeros(b, self.num_targets, width)
        if self.query_mode == "bracket":
            slots = torch.cat([memory[:, :1], slots, memory[:, -1:]], 1)
        return slots

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        projected = self.project(prefix)
        query = self._queries(projected) + self.query_positions
        memory = projected + self.memory_positions
        for layer in self.layers:
            query = layer(query, memory)
        if self.query_mode == "bracket":
            query = query[:, 1:-1]
        return self.classifier(query)


@hookimpl
def benchkit_register(registry):
    registry.predictor("transformer-encoder", TransformerEncoderPredictor)
    registry.predictor("transformer-decoder", TransformerDecoderPredictor)
