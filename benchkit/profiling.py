"""Parameter counts per component of a composition (FLOPs, latency and memory are issue 7's, still to come).

Modules are built on PyTorch's ``meta`` device: shapes only, no memory and no initialisation, so a paper-scale
composition (a 75M-parameter NetVLAD projection, a 150M-parameter LSTM) is counted instantly on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from benchkit.interfaces import FeatureSpec, PredictorSpec
from benchkit.plugins import Registry
from benchkit.vocabulary import Vocabulary


@dataclass(frozen=True)
class ParamRow:
    component: str
    total: int
    trainable: int


def count(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def parameter_table(
    registry: Registry,
    aggregator: str,
    predictor: str | None,
    spec: FeatureSpec,
    vocabulary: Vocabulary,
    seq_len: int,
) -> list[ParamRow]:
    """Rows for the aggregator (and its ``components()`` when it has them), the predictor, and the total."""
    with torch.device("meta"):
        agg = registry.build("aggregator", registry.resolve("aggregator", aggregator), spec)
        rows = []
        parts = agg.components() if hasattr(agg, "components") else {}
        for name, part in parts.items():
            rows.append(ParamRow(f"  {aggregator}.{name}", *count(part)))
        rows.insert(0, ParamRow(f"aggregator {aggregator}", *count(agg)))
        if predictor:
            pspec = PredictorSpec(agg.out_dim, agg.num_tokens, vocabulary, seq_len + 2)
            pred = registry.build("predictor", registry.resolve("predictor", predictor), pspec)
            rows.append(ParamRow(f"predictor {predictor}", *count(pred)))
            total = count(agg)[0] + count(pred)[0], count(agg)[1] + count(pred)[1]
            rows.append(ParamRow("total", *total))
    return rows
