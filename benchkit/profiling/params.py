"""Parameter counts per component: total, trainable, frozen (docs/profiling.md).

A parameter shared by two modules (GPT-2's tied input and output embeddings) is counted once. A component that is
not an ``nn.Module`` itself (a backbone wrapper) is counted through the modules it holds as attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ParamRow:
    component: str
    total: int
    trainable: int

    @property
    def frozen(self) -> int:
        return self.total - self.trainable


def modules_of(obj: Any) -> list[nn.Module]:
    """``obj`` itself when it is a module; else its ``module`` / ``model`` (a lazily built encoder, e.g. the Hugging
    Face backbones' ``module`` property); else the modules among its attributes."""
    if obj is None:
        return []
    if isinstance(obj, nn.Module):
        return [obj]
    for name in ("module", "model"):
        value = getattr(obj, name, None)
        if isinstance(value, nn.Module):
            return [value]
    return [v for v in vars(obj).values() if isinstance(v, nn.Module)] if hasattr(obj, "__dict__") else []


def _unique(objects: Iterable[Any]) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for obj in objects:
        for module in modules_of(obj):
            for p in module.parameters():
                seen.setdefault(id(p), p)
    return list(seen.values())


def count(*objects: Any) -> tuple[int, int]:
    """``(total, trainable)`` parameters of the given modules (or module holders), each parameter once."""
    params = _unique(objects)
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def parameter_rows(components: Mapping[str, tuple[str, Any]]) -> list[ParamRow]:
    """``components``: kind → (label, object), e.g. ``{"aggregator": ("invpatch-paper", module)}``.

    One row per component (``"aggregator invpatch-paper"``), indented rows for the parts it lists in
    ``components()`` (InvPatch's merge / cct / frame_vit, a predictor's classifier), and ``total``.
    """
    rows = []
    for kind, (label, obj) in components.items():
        if obj is None:
            continue
        rows.append(ParamRow(f"{kind} {label}", *count(obj)))
        parts = obj.components() if hasattr(obj, "components") else {}
        rows += [ParamRow(f"  {label}.{name}", *count(part)) for name, part in parts.items()]
    rows.append(ParamRow("total", *count(*(obj for _, obj in components.values()))))
    return rows
