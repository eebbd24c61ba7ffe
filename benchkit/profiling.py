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
        agg_count = count(agg)
        rows = [ParamRow(f"aggregator {aggregator}", *agg_count)]
        parts = agg.components() if hasattr(agg, "components") else {}
        rows += [ParamRow(f"  {aggregator}.{name}", *count(part)) for name, part in parts.items()]
        if predictor:
            pspec = PredictorSpec(agg.out_dim, agg.num_tokens, vocabulary, seq_len + 2)
            pred = registry.build("predictor", registry.resolve("predictor", predictor), pspec)
            pred_count = count(pred)
            rows.append(ParamRow(f"predictor {predictor}", *pred_count))
            rows.append(ParamRow("total", agg_count[0] + pred_count[0], agg_count[1] + pred_count[1]))
    return rows
