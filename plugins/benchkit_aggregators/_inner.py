"""Building the aggregator that a wrapper aggregator (``per-clip``, ``frame-differences``) runs inside."""

from __future__ import annotations

from typing import Any

from torch import nn

from benchkit.api import FeatureSpec


def build_inner(inner: str | dict[str, Any], spec: FeatureSpec, why: str) -> nn.Module:
    """``inner`` (an aggregator name, preset, or mapping with ``name`` and its keywords) built for ``spec``; a
    ``ValueError`` ending in ``why`` when it does not take ``spec.level``."""
    from benchkit.api import get_registry

    registry = get_registry()
    name, kwargs = (inner, {}) if isinstance(inner, str) else (inner["name"], {
        k: v for k, v in inner.items() if k != "name"})
    resolved = registry.resolve("aggregator", name, kwargs)
    if spec.level not in resolved.entry.meta.get("levels", ()):
        raise ValueError(f"inner aggregator {name!r} does not take {spec.level}-level tokens{why}")
    return registry.build("aggregator", resolved, spec)
