"""What ``benchkit profile`` does with its arguments: one composition named by plugins or presets, or every cell
of a grid (docs/profiling.md, "Command")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from benchkit import yaml_safe
from benchkit.errors import ConfigError
from benchkit.profiling.compose import build_backbone, build_composition, feature_spec_of
from benchkit.profiling.options import ProfileOptions
from benchkit.profiling.profiler import profile_cell, profile_composition
from benchkit.registry.interfaces import FeatureSpec
from benchkit.registry.plugins import Registry
from benchkit.sequence.vocabulary import Vocabulary

KINDS = ("backbone", "aggregator", "predictor")
SEQ_LEN = 16
"""Actions per decoded sequence of a single composition, unless given (the InvPatch runtime analysis)."""


def parse_grid_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--grid {text!r} is not HxW (e.g. 14x14)") from None
    return h, w


def parse_kwargs(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``KIND.KEY=VALUE`` (value read as YAML) → ``{kind: {key: value}}``."""
    out: dict[str, dict[str, Any]] = {k: {} for k in KINDS}
    for item in items:
        target, sep, value = item.partition("=")
        kind, dot, key = target.partition(".")
        if not sep or not dot or kind not in KINDS or not key:
            raise ConfigError(f"--set {item!r}: expected KIND.KEY=VALUE with KIND one of {', '.join(KINDS)}")
        out[kind][key] = yaml_safe.loads(value, f"--set {yaml_safe.short(item, 60)}")
    return out


def profile_names(
    registry: Registry,
    names: dict[str, str | None],
    kwargs: dict[str, dict[str, Any]],
    *,
    level: str,
    frames: int,
    image_size: int,
    grid: tuple[int, int],
    dim: int,
    vocabulary: Vocabulary,
    options: ProfileOptions,
    command: str | None = None,
) -> dict[str, Any]:
    """One composition from plugin / preset names. With a backbone, ``frames`` x ``image_size``² clips are
    encoded and the features' shape comes from its output; without one, features are ``frames`` x ``grid`` x
    ``dim``. Neither FLOPs nor latency asked for: parameters only, counted on the meta device (any size)."""
    if not names.get("aggregator"):
        raise ConfigError("name an aggregator (-a) for a single composition, or give a grid file")
    for kind, given in kwargs.items():
        if given and not names.get(kind):
            raise ConfigError(f"--set {kind}.…: no {kind} given")
    resolved = {k: registry.resolve(k, n, kwargs[k]) if n else None for k, n in names.items()}
    shapes_only = not (options.flops or options.latency)
    backbone, video_shape = None, None
    if resolved["backbone"] is not None:
        video_shape = (frames, image_size, image_size)
        backbone = build_backbone(registry, resolved["backbone"], options)
        spec = feature_spec_of(backbone, video_shape, level, torch.device("cpu"))
    else:
        spec = FeatureSpec(level=level, dim=dim, frames=frames, grid=grid)
    comp = build_composition(
        registry, aggregator=resolved["aggregator"], predictor=resolved["predictor"], spec=spec,
        vocabulary=vocabulary, actions=options.actions or SEQ_LEN, labels={k: n for k, n in names.items() if n},
        backbone=backbone if options.backbone else None, video_shape=video_shape,
        device="meta" if shapes_only else options.torch_device(), seed=options.seed,
    )
    return profile_composition(comp, options, command)


def profile_grid(registry: Registry, cells: list[Any], options: ProfileOptions, command: str | None = None):
    """Every planned cell of a grid, as the runner's ``profile:`` section would: the dataset gives the clip shape,
    vocabulary and target length (its longest sequence), the backbone the feature shape."""
    results, datasets = [], {}
    for pc in cells:
        key = pc.dataset_key
        if key not in datasets:
            dataset = registry.build("dataset", pc.dataset)
            longest = max(len(dataset.targets(i)) for i in range(len(dataset)))
            datasets[key] = (tuple(int(d) for d in dataset.video(0).shape[:3]), dataset.vocabulary, longest + 2)
        video_shape, vocabulary, max_len = datasets[key]
        result = profile_cell(registry, pc, None, vocabulary, max_len, options, video_shape=video_shape)
        if command:
            result["detail"]["command"] = command
        results.append(result)
    return results
