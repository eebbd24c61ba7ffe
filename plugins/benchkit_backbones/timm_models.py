"""``timm``: any timm model by name (``timm:vit_small_patch16_224``, ``timm:convnext_tiny.fb_in22k``), frozen.

Pretrained weights come from ``path`` (a checkpoint file, or a folder holding ``model.safetensors`` or
``pytorch_model.bin``) or from the Hugging Face cache under the model's ``hf_hub_id`` (``timm/<name>.<tag>``), and
are loaded through timm's own pretrained path (``pretrained_cfg_overlay={"file": ...}``: its checkpoint filters
and classifier adaptation apply); nothing is downloaded. ``weights: random`` builds the architecture with seeded
random weights. ``model_kwargs`` go to ``timm.create_model`` (e.g. ``img_size``, ``dynamic_img_size``).

Preprocessing follows the model's ``pretrained_cfg`` (timm's eval transform: resize the shorter side to
``size / crop_pct``, centre crop ``size``; ``crop_mode: squash`` resizes both sides), the input size following
``img_size`` when it was overridden. Tokens: a ViT-style model gives ``forward_features`` ``(N, prefix + P, D)``:
the patch rows drop the ``num_prefix_tokens``, and the frame row is ``forward_head(pre_logits=True)`` (the CLS or
pooled token after the model's own norm); a CNN gives a ``(N, C, h, w)`` map (``NHWC`` for Swin-like models):
its cells are the patch rows and its pooled ``pre_logits`` the frame row.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchkit.api import PluginError, hookimpl
from benchkit_backbones._frozen import FrozenEncoder, state_dict_hash
from benchkit_backbones._preprocess import Preprocess
from benchkit_backbones._weights import WEIGHT_SUFFIXES, files_identity, locate_hub_file, missing

HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
WEIGHTS = ("pretrained", "random")


class TimmBackbone(FrozenEncoder):
    """A frozen timm model: per-frame CLS/pooled token and patch tokens."""

    name = "timm"

    def __init__(
        self,
        model: str,
        path: str | None = None,
        weights: str = "pretrained",
        preprocess: str | dict[str, Any] = "processor",
        frame_token: str = "default",
        device: str = "auto",
        precision: str = "auto",
        batch_size: int | None = None,
        seed: int = 0,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        import timm

        super().__init__(device=device, precision=precision, batch_size=batch_size)
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {weights!r}")
        if frame_token not in ("default", "mean"):
            raise ValueError(f"frame_token must be default or mean; got {frame_token!r}")
        if model.startswith("hf-hub:"):
            raise ValueError("give the timm model name (e.g. vit_base_patch16_224.augreg_in21k), not an hf-hub: id")
        arch = model.split(".")[0]
        if not timm.is_model(arch):
            close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.7)
            hint = f"; did you mean {' or '.join(close)}?" if close else " (see timm.list_models())"
            raise PluginError(f"backbone 'timm': unknown timm model {model!r}{hint}")
        self.model_name, self.weights, self.seed, self.frame_token = model, weights, seed, frame_token
        self.model_kwargs = dict(model_kwargs or {})
        self.file = self._locate(path) if weights == "pretrained" else None
        self.preprocess = self._preprocess(preprocess)
        if weights == "random":  # built now (no files to read), so profilers see its parameters
            _ = self.module

    def _locate(self, path: str | None) -> Path:
        what = "backbone 'timm'"
        if path is not None:
            p = Path(path).expanduser()
            if p.is_dir():
                found = [p / f for f in HUB_FILES if (p / f).is_file()]
                if not found:
                    raise PluginError(f"{what}: {p} holds none of {', '.join(HUB_FILES)}")
                return found[0]
            if not p.is_file() or not p.name.endswith(WEIGHT_SUFFIXES):
                raise PluginError(f"{what}: path {path} is not a checkpoint file ({', '.join(WEIGHT_SUFFIXES)})")
            return p
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(self.model_name)
        hub_id = cfg.hf_hub_id if cfg is not None else None
        if not hub_id:
            raise PluginError(f"{what}: {self.model_name!r} has no Hugging Face weights; give `path:` to a checkpoint")
        filenames = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_FILES
        found = locate_hub_file(hub_id, filenames)
        if found is None:
            raise missing(what, hub_id)
        return found

    def _create(self, pretrained: bool) -> nn.Module:
        import timm

        overlay = {"pretrained_cfg_overlay": {"file": str(self.file)}} if pretrained else {}
        try:
            return timm.create_model(self.model_name, pretrained=pretrained, **overlay, **self.model_kwargs)
        except (RuntimeError, KeyError) as e:  # a checkpoint that does not fit the architecture
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PluginError(f"backbone 'timm': cannot load {self.file} into {self.model_name}: {first}") from None

    def _preprocess(self, preprocess: str | dict[str, Any]) -> Preprocess:
        from timm.data import resolve_data_config
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(self.model_name)
        data = resolve_data_config(pretrained_cfg=cfg.to_dict() if cfg is not None else {})
        _, h, w = data["input_size"]
        if "img_size" in self.model_kwargs:  # a model built for another input size
            size = self.model_kwargs["img_size"]
            h, w = (size, size) if isinstance(size, int) else size
        scale = (math.floor(h / data["crop_pct"]), math.floor(w / data["crop_pct"]))
        base = Preprocess(
            resize=scale[0] if data["crop_mode"] != "squash" and scale[0] == scale[1] else scale,
            crop=(h, w),
            interpolation=data["interpolation"],
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
        )
        if preprocess in ("processor", "reference"):
            return base
        if isinstance(preprocess, dict):
            return base.with_overrides(preprocess)
        raise ValueError(f"preprocess must be processor or a dict of fields; got {preprocess!r}")

    def build(self) -> nn.Module:
        if self.weights == "random":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                return self._create(pretrained=False)
        return self._create(pretrained=True)

    def weights_identity(self) -> dict[str, Any]:
        base = {"model": self.model_name, "model_kwargs": self.model_kwargs}
        if self.weights == "random":
            return {**base, "random": self.seed, "state": state_dict_hash(self.module)}
        return {**base, "files": files_identity([self.file])}

    def token_rule(self) -> str:
        return f"frame=forward_head(pre_logits); patch=forward_features minus prefix tokens; {self.frame_token}"

    def tokens(self, model: nn.Module, pixels: torch.Tensor):
        b, t = pixels.shape[:2]
        feats = model.forward_features(pixels.flatten(0, 1))
        frame = model.forward_head(feats, pre_logits=True)
        if feats.ndim == 4:  # a feature map
            if getattr(model, "output_fmt", "NCHW") == "NHWC":
                feats = feats.permute(0, 3, 1, 2)
            grid = (feats.shape[-2], feats.shape[-1])
            patch = feats.flatten(2).transpose(1, 2)
        else:
            patch = feats[:, int(getattr(model, "num_prefix_tokens", 0)) :]
            grid = self._grid(model, pixels, patch.shape[1])
        if frame.ndim != 2 or self.frame_token == "mean":
            frame = patch.mean(1)
        return frame.unflatten(0, (b, t)), patch.unflatten(0, (b, t)), grid

    @staticmethod
    def _grid(model: nn.Module, pixels: torch.Tensor, n: int) -> tuple[int, int]:
        embed = getattr(model, "patch_embed", None)
        if embed is not None and hasattr(embed, "dynamic_feat_size"):
            grid = tuple(int(g) for g in embed.dynamic_feat_size(tuple(pixels.shape[-2:])))
            if grid[0] * grid[1] == n:
                return grid
        side = math.isqrt(n)
        if side * side != n:
            raise RuntimeError(f"cannot lay {n} patch tokens of {type(model).__name__} on a grid")
        return side, side


@hookimpl
def benchkit_register(registry):
    registry.backbone("timm", TimmBackbone, name_argument="model",
                      description="any timm model by name (timm:<name>): CLS/pooled and patch tokens per frame")
