"""A composition to profile: backbone (optional), aggregator and predictor built at the shapes of one sample
(docs/profiling.md, "Input shapes")."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchkit.profiling.options import ProfileOptions
from benchkit.registry.interfaces import FeatureSpec, PredictorSpec
from benchkit.registry.plugins import Registry, Resolved
from benchkit.sequence.vocabulary import Vocabulary

PRECISIONS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # the backbones' `precision` names


@dataclass
class Composition:
    """Built components, their display labels, and the sample shapes they are profiled at. ``actions``: the
    target sequence length in actions; the predictor is built for ``actions + 2`` tokens (BOS, actions, EOS)."""

    aggregator: nn.Module
    predictor: Any | None
    feature_spec: FeatureSpec
    predictor_spec: PredictorSpec | None
    labels: dict[str, str]
    actions: int
    backbone: Any | None = None
    video_shape: tuple[int, int, int] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def parts(self) -> dict[str, tuple[str, Any]]:
        """Kind → (label, object), in pipeline order, for parameter rows and FLOP attribution."""
        out = {"backbone": (self.labels.get("backbone", ""), self.backbone)} if self.backbone is not None else {}
        out["aggregator"] = (self.labels["aggregator"], self.aggregator)
        if self.predictor is not None:
            out["predictor"] = (self.labels["predictor"], self.predictor)
        return out


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Random weights and inputs from ``seed`` without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def clip(video_shape: tuple[int, int, int], batch: int = 1) -> torch.Tensor:
    """Random uint8 videos ``(batch, T, H, W, 3)``, what ``Backbone.encode`` takes."""
    return torch.randint(0, 256, (batch, *video_shape, 3), dtype=torch.uint8)


def build_backbone(registry: Registry, resolved: Resolved, options: ProfileOptions) -> Any:
    """Build a backbone with seeded random state. A plugin that takes ``device`` / ``precision`` keywords (the
    Hugging Face and timm backbones) and was not given them runs on the profile's device and dtype; a backbone
    that is itself a module is moved there by :func:`build_composition`."""
    accepted = inspect.signature(resolved.entry.factory).parameters
    extra = {}
    if "device" in accepted and "device" not in resolved.kwargs:
        extra["device"] = str(options.torch_device())
    if "precision" in accepted and "precision" not in resolved.kwargs:
        extra["precision"] = PRECISIONS[options.dtype]
    with seeded(options.seed):
        return registry.build("backbone", Resolved(resolved.entry, {**resolved.kwargs, **extra}, resolved.preset))


def backbone_input(backbone: Any, video_shape: tuple[int, int, int], device: torch.device, batch: int = 1):
    """A clip on the backbone's device when it is a module benchkit placed, else on the CPU (where the feature
    extractor hands videos to ``encode``)."""
    videos = clip(video_shape, batch)
    return videos.to(device) if isinstance(backbone, nn.Module) else videos


@torch.inference_mode()
def feature_spec_of(backbone: Any, video_shape: tuple[int, int, int], level: str, device: torch.device):
    """The ``FeatureSpec`` a backbone gives one clip of ``video_shape`` at ``level``."""
    out = backbone.encode(backbone_input(backbone, video_shape, device))
    patch = out.patch
    return FeatureSpec(level=level, dim=int(patch.shape[-1]), frames=int(patch.shape[1]),
                       grid=tuple(int(g) for g in out.grid))


def build_composition(
    registry: Registry,
    *,
    aggregator: Resolved,
    predictor: Resolved | None,
    spec: FeatureSpec,
    vocabulary: Vocabulary,
    actions: int,
    labels: dict[str, str],
    backbone: Any | None = None,
    video_shape: tuple[int, int, int] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> Composition:
    """Build the aggregator and predictor (random weights from ``seed``) on ``device`` (``"meta"``: shapes only,
    for parameter counts of any size without memory). ``backbone`` is an already built ``Backbone`` or ``None``."""
    device = torch.device(device)
    with seeded(seed), torch.device(device):
        agg = registry.build("aggregator", aggregator, spec)
        pspec = pred = None
        if predictor is not None:
            pspec = PredictorSpec(agg.out_dim, agg.num_tokens, vocabulary, actions + 2)
            pred = registry.build("predictor", predictor, pspec)
    if isinstance(backbone, nn.Module) and device.type != "meta":
        backbone.to(device).eval()
    return Composition(agg, pred, spec, pspec, labels, actions, backbone, video_shape, device)
