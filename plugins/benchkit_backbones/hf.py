"""Hugging Face backbones: ``dinov2``, ``videomae``, ``siglip``, ``clip``, ``timesformer``, ``vjepa2`` (when the
installed transformers has it) and ``hf``, any image model by folder or id (``hf:/path/to/model``).

Weights are loaded as a user with them on disk or in the Hugging Face cache would: ``from_pretrained`` on the
local folder that :mod:`benchkit_backbones._weights` finds, never downloading. ``weights: random`` builds the
family's paper-size architecture (its built-in copy of the checkpoint's config, ``config`` overriding fields)
with seeded random weights and no files at all, for FLOPs and profiling. Preprocessing comes from the model's own
processor config (``preprocess: processor``), the InvPatch reference's (``preprocess: reference``, spec
``invpatch.md`` §4: DINOv2 resized to 224x224 without keeping the aspect ratio; VideoMAE's processor), or a dict
of :class:`~benchkit_backbones._preprocess.Preprocess` fields overriding the processor's. What the frame and patch
rows hold per family is tabulated in :mod:`benchkit_backbones._hf_families` and ``docs/backbones.md``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchkit.api import PluginError, hookimpl
from benchkit_backbones._frozen import FrozenEncoder, state_dict_hash
from benchkit_backbones._hf_families import FAMILIES, VIDEO_TYPES, Family, available
from benchkit_backbones._preprocess import Preprocess, from_processor_config, read_processor_config
from benchkit_backbones._weights import files_identity, locate_folder, weight_files

log = logging.getLogger("benchkit")
WEIGHTS = ("pretrained", "random")


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report and progress bars (benchkit reports missing weights itself)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class HFBackbone(FrozenEncoder):
    """A frozen Hugging Face encoder of one :class:`Family`: videos in, frame and patch tokens out."""

    def __init__(
        self,
        family: Family,
        model: str | None = None,
        path: str | None = None,
        weights: str = "pretrained",
        preprocess: str | dict[str, Any] = "processor",
        frame_token: str = "default",
        device: str = "auto",
        precision: str = "auto",
        batch_size: int | None = None,
        seed: int = 0,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(device=device, precision=precision, batch_size=batch_size)
        self.family, self.name = family, family.name
        self.model_id = model or family.default_model
        if self.model_id is None and path is None:
            raise ValueError("give `model:` (a folder or a Hugging Face id), e.g. hf:/path/to/model")
        self.model_id = self.model_id or str(path)
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {weights!r}")
        if frame_token not in family.frame_tokens:
            raise ValueError(f"frame_token must be one of {', '.join(family.frame_tokens)}; got {frame_token!r}")
        if config and weights != "random":
            raise ValueError("`config` overrides the architecture of weights: random only")
        self.weights, self.seed, self.frame_token = weights, seed, frame_token
        self.folder: Path | None = None
        if weights == "pretrained":
            self.folder = locate_folder(f"backbone {self.name!r}", self.model_id, path)
            self.config = self._read_config(self.folder)
        else:
            local = path or (self.model_id if Path(self.model_id).expanduser().is_dir() else None)
            self.folder = Path(local).expanduser() if local else None
            self.config = self._random_config(dict(config or {}))
        self.preprocess = self._preprocess(preprocess)
        if weights == "random":  # built now (no files to read), so profilers see its parameters
            _ = self.module

    # -- construction ------------------------------------------------------------------------------------------
    def _read_config(self, folder: Path):
        from transformers import AutoConfig

        with quiet_transformers():
            cfg = AutoConfig.from_pretrained(folder)
        types = self.family.model_types
        if types and cfg.model_type not in types:
            raise PluginError(
                f"backbone {self.name!r}: {folder} holds a {cfg.model_type!r} model, not {' or '.join(types)}; "
                f"use the backbone of that family, or `hf` for any image model"
            )
        if not types and cfg.model_type in VIDEO_TYPES:
            raise PluginError(f"backbone 'hf': {folder} holds a video model ({cfg.model_type}); use its own backbone")
        return cfg

    def _random_config(self, overrides: dict[str, Any]):
        from transformers import AutoConfig

        if self.folder is not None:
            cfg = self._read_config(self.folder)
            for key, value in overrides.items():
                setattr(cfg, key, value)
            return cfg
        if self.model_id != self.family.default_model or not self.family.arch:
            builtin = f" (built in: {self.family.default_model})" if self.family.arch else ""
            raise ValueError(
                f"no built-in architecture for {self.model_id!r}{builtin}; for weights: random give `path:` to a "
                "folder with its config.json"
            )
        arch = {**self.family.arch, **overrides}
        return AutoConfig.for_model(arch.pop("model_type"), **arch)

    def _preprocess(self, preprocess: str | dict[str, Any]) -> Preprocess:
        on_disk = read_processor_config(self.folder) if self.folder is not None else None
        base_cfg = on_disk or self.family.processor
        if isinstance(preprocess, dict):  # fields over the processor's (or over no resize, no crop, ImageNet)
            base = from_processor_config(base_cfg) if base_cfg else Preprocess(resize=None, crop=None)
            return base.with_overrides(preprocess)
        if preprocess not in ("processor", "reference"):
            raise ValueError(f"preprocess must be processor, reference or a dict of fields; got {preprocess!r}")
        if base_cfg is None:
            raise ValueError(
                f"{self.model_id} has no preprocessor_config.json; give `preprocess:` as a dict "
                "(resize, crop, interpolation, mean, std)"
            )
        if preprocess == "reference":
            ref = self.family.reference
            if ref is None:
                raise ValueError(f"the InvPatch reference has no {self.name} preprocessing (only DINOv2, VideoMAE)")
            if ref != "processor":
                return ref
        return from_processor_config(base_cfg)

    def build(self) -> nn.Module:
        import transformers

        cls = getattr(transformers, self.family.model_class)
        if self.weights == "random":
            with torch.random.fork_rng(devices=[]), quiet_transformers(), self.family.constructing():
                torch.manual_seed(self.seed)
                model = cls.from_config(self.config) if cls is transformers.AutoModel else cls(self.config)
        else:
            with quiet_transformers(), self.family.constructing():
                model, info = cls.from_pretrained(self.folder, output_loading_info=True)
            self._check_loaded(model, info.get("missing_keys", ()))
        if self.family.model_class == "AutoModel" and hasattr(model, "vision_model"):
            model = model.vision_model  # a full CLIP/SigLIP-style checkpoint: its image tower
        return model.float()

    def _check_loaded(self, model: nn.Module, missing) -> None:
        missing = sorted(missing)
        if not missing:
            return
        total = len(model.state_dict())
        if len(missing) >= total / 2:
            raise PluginError(
                f"backbone {self.name!r}: {self.folder} lacks {len(missing)} of {total} weights of "
                f"{type(model).__name__} (e.g. {missing[0]}); is it the right checkpoint?"
            )
        log.warning("backbone %s: %d weights not in %s, left random: %s", self.name, len(missing), self.folder,
                    ", ".join(missing[:5]))

    # -- identity and tokens -----------------------------------------------------------------------------------
    def weights_identity(self) -> dict[str, Any]:
        if self.weights == "random":
            return {"random": self.seed, "config": self.config.to_diff_dict(), "state": state_dict_hash(self.module)}
        files = [*weight_files(self.folder), self.folder / "config.json"]
        return {"class": self.family.model_class, "files": files_identity(files)}

    def token_rule(self) -> str:
        return f"{self.family.rule}; frame_token={self.frame_token}"

    def tokens(self, model: nn.Module, pixels: torch.Tensor):
        if self.name == "hf":
            ft = "auto" if self.frame_token == "default" else self.frame_token
            return self.family.tokens(model, pixels, ft)
        frame, patch, grid = self.family.tokens(model, pixels)
        if self.frame_token == "mean":
            frame = patch.mean(2)
        return frame, patch, grid


def _factory(family: Family) -> functools.partial:
    """``HFBackbone`` with its family bound: the grid keywords are the rest of its signature."""
    build = functools.partial(HFBackbone, family)
    build.__name__ = build.__qualname__ = f"{family.name}_backbone"
    build.__doc__ = family.description
    return build


@hookimpl
def benchkit_register(registry):
    for family in FAMILIES.values():
        if available(family):
            registry.backbone(family.name, _factory(family), name_argument="model", description=family.description)
