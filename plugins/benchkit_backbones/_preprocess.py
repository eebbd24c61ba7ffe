"""Frame preprocessing for frozen backbones: resize, centre crop, rescale, normalise, batched on any device.

Values come from the model's own processor config when it is on disk (``preprocessor_config.json`` or
``video_preprocessor_config.json`` for Hugging Face models, ``pretrained_cfg`` for timm), otherwise from the
family's built-in copy of its paper checkpoint's config. The processor path mirrors Hugging Face's torchvision
processors: resize the uint8 frames with antialiasing (so the result is rounded to uint8), crop at
``floor((H - h) / 2)``, then rescale and normalise in float32. The InvPatch reference's DINOv2 path (spec
``invpatch.md`` §4) instead converts to float first and resizes bilinearly to 224x224 without antialiasing and
without keeping the aspect ratio: that is :func:`invpatch_dinov2`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
# PIL resampling codes, as Hugging Face processor configs store them
PIL_RESAMPLE = {0: "nearest-exact", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


# torchvision.transforms.InterpolationMode values (tests/test_backbones_hf.py checks they still match)
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "box", "hamming", "lanczos")


@dataclass(frozen=True)
class Preprocess:
    """``resize``: an int resizes the shorter side to it (aspect kept), ``(h, w)`` resizes to exactly that, None
    skips; ``crop``: centre crop ``(h, w)`` or None. ``uint8_resize`` resizes the uint8 frames (rounded, as the
    Hugging Face processors do) rather than float ones."""

    resize: int | tuple[int, int] | None
    crop: tuple[int, int] | None
    interpolation: str = "bicubic"
    antialias: bool = True
    uint8_resize: bool = True
    rescale: float = 1 / 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:  # checked without importing torchvision (slow), which applies it later
        if self.interpolation not in INTERPOLATIONS:
            modes = ", ".join(INTERPOLATIONS)
            raise ValueError(f"unknown interpolation {self.interpolation!r} (one of {modes})")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("preprocessing mean and std need 3 values (RGB)")

    def with_overrides(self, overrides: dict[str, Any]) -> Preprocess:
        """This preprocessing with some fields replaced (a grid's ``preprocess: {resize: [224, 224], crop: null}``)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing field {unknown[0]!r} (fields: {', '.join(sorted(known))})")
        values = dict(overrides)
        for key in ("resize", "crop"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return replace(self, **values)

    def identity(self) -> dict[str, Any]:
        """What the feature-cache key records of this preprocessing."""
        return asdict(self)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The ``(h, w)`` a ``height x width`` frame is turned into."""
        h, w = self._resize_to(height, width) if self.resize is not None else (height, width)
        return self.crop if self.crop is not None else (h, w)

    def _resize_to(self, height: int, width: int) -> tuple[int, int]:
        if isinstance(self.resize, int):  # shorter side -> resize, longer side scaled and truncated (as HF does)
            short, long = sorted((height, width))
            other = int(self.resize * long / short)
            return (self.resize, other) if height <= width else (other, self.resize)
        return tuple(self.resize)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 → ``(N, 3, h, w)`` float32, normalised."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as tvF

        x = frames.permute(0, 3, 1, 2)
        x = x.contiguous() if self.uint8_resize else x.float()
        if self.resize is not None:
            size = list(self._resize_to(*x.shape[-2:]))
            if size != list(x.shape[-2:]):
                x = tvF.resize(x, size, interpolation=InterpolationMode(self.interpolation), antialias=self.antialias)
        if self.crop is not None:
            x = _center_crop(x, self.crop)
        x = x.float() * self.rescale
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


def _center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre crop at ``floor((H - h) / 2)``; zero-padded first when the frame is smaller (as HF processors)."""
    h, w = size
    height, width = x.shape[-2:]
    if h > height or w > width:
        pad_w, pad_h = max(w - width, 0), max(h - height, 0)
        x = torch.nn.functional.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        height, width = x.shape[-2:]
    top, left = (height - h) // 2, (width - w) // 2
    return x[..., top : top + h, left : left + w]


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, dict):
        return int(value["height"]), int(value["width"])
    if isinstance(value, int | float):
        return int(value), int(value)
    return int(value[0]), int(value[1])


def from_processor_config(cfg: dict[str, Any]) -> Preprocess:
    """A Hugging Face image/video processor config → :class:`Preprocess`.

    ``size`` may be ``{"shortest_edge": s}``, ``{"height": h, "width": w}`` or a legacy int (the shorter side when
    the processor also centre-crops, a square otherwise).
    """
    resize: int | tuple[int, int] | None = None
    crop = _pair(cfg["crop_size"]) if cfg.get("do_center_crop", False) and cfg.get("crop_size") is not None else None
    size = cfg.get("size")
    if cfg.get("do_resize", True) and size is not None:
        if isinstance(size, dict) and "shortest_edge" in size and size.get("longest_edge") is None:
            resize = int(size["shortest_edge"])
        elif isinstance(size, dict) and "height" in size and "width" in size:
            resize = (int(size["height"]), int(size["width"]))
        elif isinstance(size, int | float):
            resize = int(size) if crop is not None else (int(size), int(size))
        else:
            raise ValueError(f"unsupported processor size {size!r} (need shortest_edge or height and width)")
    resample = cfg.get("resample", 2)
    interpolation = PIL_RESAMPLE.get(resample, resample) if isinstance(resample, int) else str(resample).lower()
    normalize = cfg.get("do_normalize", True)
    return Preprocess(
        resize=resize,
        crop=crop,
        interpolation=interpolation,
        rescale=float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
        mean=tuple(cfg.get("image_mean", IMAGENET_MEAN)) if normalize else (0.0, 0.0, 0.0),
        std=tuple(cfg.get("image_std", IMAGENET_STD)) if normalize else (1.0, 1.0, 1.0),
    )


PROCESSOR_KEYS = ("do_resize", "size", "do_center_crop", "crop_size", "resample", "do_rescale", "rescale_factor",
                  "do_normalize", "image_mean", "image_std")


def read_processor_config(folder: Path) -> dict[str, Any] | None:
    """The processor config stored next to the weights (None when there is none), keys it leaves out taken from
    the defaults of the processor class it names, as transformers would."""
    for name in PROCESSOR_FILES:
        path = folder / name
        if path.is_file():
            cfg = json.loads(path.read_text())
            return {**_class_defaults(cfg), **{k: v for k, v in cfg.items() if v is not None}}
    return None


def _class_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    import transformers

    name = cfg.get("image_processor_type") or cfg.get("video_processor_type") or ""
    cls = getattr(transformers, name.removesuffix("Fast"), None) if name else None
    if cls is None:
        return {}
    return {k: getattr(cls, k) for k in PROCESSOR_KEYS if getattr(cls, k, None) is not None}


def invpatch_dinov2() -> Preprocess:
    """The InvPatch reference's DINOv2 preprocessing (spec §4): /255, bilinear 224x224 (aspect ratio not kept,
    no antialiasing), ImageNet normalisation."""
    return Preprocess(
        resize=(224, 224), crop=None, interpolation="bilinear", antialias=False, uint8_resize=False,
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
    )
