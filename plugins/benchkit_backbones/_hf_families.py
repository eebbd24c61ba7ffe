"""The Hugging Face backbone families: which checkpoints each loads, its paper checkpoint's architecture and
processor config (for ``weights: random`` and when no processor config is on disk), and what its frame-level and
patch-level token rows hold.

| family | input | frame row | patch rows |
| --- | --- | --- | --- |
| dinov2 | per frame | normalised CLS (``x_norm_clstoken``) | normalised patch tokens, registers dropped |
| siglip | per frame | attention-pooled output (``pooler_output``) | ``last_hidden_state`` (post-LN) |
| clip | per frame | post-LN CLS (``pooler_output``, before the projection) | patch tokens, same post-LN |
| videomae | clip, tubelets of 2 | mean of the tubelet's patch tokens | ``last_hidden_state`` as ``(T/2, P)`` |
| vjepa2 | clip, tubelets of 2 | mean of the tubelet's patch tokens | encoder output as ``(T/2, P)`` |
| timesformer | clip | mean of the frame's patch tokens | patch tokens per frame (the CLS is per video) |
| hf | per frame | CLS, else pooled output, else patch mean | tokens after the prefix tokens, or a CNN map |

VideoMAE has no CLS token. The InvPatch reference pooled VideoMAE's tokens with ``last_hidden_state.mean(1)``
(all 1568 tokens, one vector per clip); a frame row here is the mean over one tubelet's patches, so mean pooling
the frame rows gives exactly the reference's vector, and the frame level keeps the ``T/2`` time steps.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchkit.api import DataError
from benchkit_backbones._preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, invpatch_dinov2

Tokens = tuple[torch.Tensor, torch.Tensor, tuple[int, int]]
VIDEO_TYPES = ("videomae", "vjepa2", "timesformer", "vivit", "xclip")


def patch_size(config: Any) -> tuple[int, int] | None:
    ps = getattr(config, "patch_size", None)
    if ps is None and getattr(config, "vision_config", None) is not None:
        ps = getattr(config.vision_config, "patch_size", None)
    if ps is None:
        return None
    return (int(ps), int(ps)) if isinstance(ps, int | float) else (int(ps[0]), int(ps[1]))


def pixel_grid(config: Any, pixels: torch.Tensor) -> tuple[int, int]:
    ph, pw = patch_size(config)
    return pixels.shape[-2] // ph, pixels.shape[-1] // pw


def _split_time(tokens: torch.Tensor, b: int, grid: tuple[int, int]) -> torch.Tensor:
    """Time-major tokens ``(B, T' * P, D)`` → ``(B, T', P, D)``."""
    p = grid[0] * grid[1]
    if tokens.shape[1] % p:
        raise RuntimeError(f"{tokens.shape[1]} tokens are not a multiple of the {grid} patch grid")
    return tokens.reshape(b, tokens.shape[1] // p, p, tokens.shape[-1])


def _check_tubelets(model: nn.Module, t: int) -> int:
    tub = int(model.config.tubelet_size)
    if t % tub:
        raise DataError(
            f"{model.config.model_type} groups frames in tubelets of {tub}: clips of {t} frames cannot be encoded; "
            f"use a frame count divisible by {tub}"
        )
    return tub


# -- token rules -------------------------------------------------------------------------------------------------
def dinov2_tokens(model: nn.Module, pixels: torch.Tensor) -> Tokens:
    b, t = pixels.shape[:2]
    grid = pixel_grid(model.config, pixels)
    last = model(pixel_values=pixels.flatten(0, 1)).last_hidden_state  # layer-normed
    skip = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
    return last[:, 0].unflatten(0, (b, t)), last[:, skip:].unflatten(0, (b, t)), grid


def siglip_tokens(model: nn.Module, pixels: torch.Tensor) -> Tokens:
    b, t = pixels.shape[:2]
    grid = pixel_grid(model.config, pixels)
    out = model(pixel_values=pixels.flatten(0, 1))
    patch = out.last_hidden_state
    pooled = out.pooler_output if out.pooler_output is not None else patch.mean(1)
    return pooled.unflatten(0, (b, t)), patch.unflatten(0, (b, t)), grid


def clip_tokens(model: nn.Module, pixels: torch.Tensor) -> Tokens:
    b, t = pixels.shape[:2]
    grid = pixel_grid(model.config, pixels)
    out = model(pixel_values=pixels.flatten(0, 1))
    tower = model.vision_model if hasattr(model, "vision_model") else model  # transformers 4.x nests the tower
    patch = tower.post_layernorm(out.last_hidden_state[:, 1:])
    return out.pooler_output.unflatten(0, (b, t)), patch.unflatten(0, (b, t)), grid


def sinusoid_table(n: int, dim: int) -> torch.Tensor:
    """VideoMAE's fixed sin-cos position table (transformers' ``get_sinusoid_encoding_table``), vectorised. Row i
    depends on i alone, so a clip of T frames takes the first ``T/2 * P`` rows of the 16-frame table."""
    angles = np.arange(n, dtype=np.float64)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.FloatTensor(angles).unsqueeze(0)


@contextlib.contextmanager
def videomae_fast_tables():
    """transformers fills VideoMAE's table in pure Python (seconds for 1568 x 768 on a small CPU); use the
    vectorised :func:`sinusoid_table` while a VideoMAE model is constructed."""
    from transformers.models.videomae import modeling_videomae

    saved = modeling_videomae.get_sinusoid_encoding_table
    modeling_videomae.get_sinusoid_encoding_table = sinusoid_table
    try:
        yield
    finally:
        modeling_videomae.get_sinusoid_encoding_table = saved


def videomae_tokens(model: nn.Module, pixels: torch.Tensor) -> Tokens:
    b, t = pixels.shape[:2]
    tub = _check_tubelets(model, t)
    grid = pixel_grid(model.config, pixels)
    n = (t // tub) * grid[0] * grid[1]
    emb = model.embeddings
    if emb.position_embeddings.shape[1] != n:  # the table transformers builds for num_frames = T
        emb.position_embeddings = sinusoid_table(n, model.config.hidden_size)
    patch = _split_time(model(pixel_values=pixels).last_hidden_state, b, grid)
    return patch.mean(2), patch, grid


def vjepa2_tokens(model: nn.Module, pixels: torch.Tensor) -> Tokens:
    b, t = pixels.shape[:2]
    _check_tubelets(model, t)
    grid = pixel_grid(model.config, pixels)
    last = model(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state
    patch = _split_time(last, b, grid)
    return patch.mean(2), patch, grid


@contextlib.contextmanager
def _frames(config: Any, t: int):
    """TimeSformer's layers read ``config.num_frames``; set it to the clip's length for one forward pass (its time
    embeddings are then interpolated by transformers, nearest)."""
    saved = config.num_frames
    config.num_frames = t
    try:
        yield
    finally:
        config.num_frames = saved


def timesformer_tokens(model: nn.Module, pixels: torch.Tensor) -> Tokens:
    b, t = pixels.shape[:2]
    grid = pixel_grid(model.config, pixels)
    with _frames(model.config, t):
        last = model(pixel_values=pixels).last_hidden_state  # [CLS, (h, w, t) patch-major]
    patch = last[:, 1:].reshape(b, grid[0] * grid[1], t, -1).transpose(1, 2)
    return patch.mean(2), patch, grid


def _token_grid(config: Any, pixels: torch.Tensor, n_tokens: int) -> tuple[int, int]:
    if patch_size(config) is not None:
        return pixel_grid(config, pixels)
    for extra in range(0, 9):  # no patch size in the config: a square grid after up to 8 prefix tokens
        side = round((n_tokens - extra) ** 0.5)
        if side * side == n_tokens - extra:
            return side, side
    raise ValueError(f"cannot tell the patch grid of {n_tokens} tokens (the config has no patch_size)")


def generic_tokens(model: nn.Module, pixels: torch.Tensor, frame_token: str = "auto") -> Tokens:
    """Any image model: CLS when there are prefix tokens, else the pooled output, else the patch mean."""
    b, t = pixels.shape[:2]
    out = model(pixel_values=pixels.flatten(0, 1))
    last = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    pooled = getattr(out, "pooler_output", None)
    cls = None
    if last.ndim == 4:  # a convolutional map (N, C, h, w)
        grid = (last.shape[-2], last.shape[-1])
        patch = last.flatten(2).transpose(1, 2)
    else:
        grid = _token_grid(model.config, pixels, last.shape[1])
        extra = last.shape[1] - grid[0] * grid[1]
        if extra < 0:
            raise ValueError(f"{last.shape[1]} tokens for a {grid} patch grid")
        patch = last[:, extra:]
        cls = last[:, 0] if extra else None
    if pooled is not None:
        pooled = pooled.flatten(1)
        pooled = pooled if pooled.shape[-1] == patch.shape[-1] else None
    choices = {"cls": cls, "pooler": pooled, "mean": patch.mean(1)}
    if frame_token == "auto":
        frame = next(v for v in (cls, pooled, choices["mean"]) if v is not None)
    elif choices[frame_token] is None:
        raise ValueError(f"frame_token {frame_token!r}: this model has no {frame_token} output")
    else:
        frame = choices[frame_token]
    return frame.unflatten(0, (b, t)), patch.unflatten(0, (b, t)), grid


@dataclass(frozen=True)
class Family:
    """A registered Hugging Face backbone family."""

    name: str
    description: str
    model_class: str  # transformers class that loads the encoder ("AutoModel": whatever the config names)
    tokens: Callable[..., Tokens]
    rule: str  # what the frame and patch rows hold (docs, fingerprint)
    default_model: str | None = None  # the paper checkpoint (Hugging Face id)
    model_types: tuple[str, ...] = ()  # config.model_type values it loads; () = any image model
    arch: dict[str, Any] = field(default_factory=dict)  # default_model's config, for weights: random
    processor: dict[str, Any] | None = None  # default_model's processor config, when none is on disk
    reference: Preprocess | str | None = None  # InvPatch's preprocessing ("processor": the processor's)
    frame_tokens: tuple[str, ...] = ("default", "mean")
    constructing: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext  # around model creation


_CROP = {"do_resize": True, "do_center_crop": True, "do_rescale": True, "do_normalize": True}

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "dinov2", "DINOv2 (per frame): normalised CLS and patch tokens; default facebook/dinov2-base",
            "AutoModel", dinov2_tokens, "frame=normed CLS; patch=normed patch tokens (registers dropped)",
            "facebook/dinov2-base", ("dinov2", "dinov2_with_registers"),
            arch={"model_type": "dinov2", "image_size": 518, "patch_size": 14, "hidden_size": 768,
                  "num_hidden_layers": 12, "num_attention_heads": 12, "mlp_ratio": 4, "layerscale_value": 1.0},
            processor={**_CROP, "size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224},
                       "resample": 3, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD},
            reference=invpatch_dinov2(),
        ),
        Family(
            "videomae", "VideoMAE (video-native, tubelets of 2): (T/2, P) tokens; default MCG-NJU/videomae-base",
            "VideoMAEModel", videomae_tokens, "frame=mean of the tubelet's patch tokens; patch=last_hidden_state",
            "MCG-NJU/videomae-base", ("videomae",),
            arch={"model_type": "videomae", "image_size": 224, "patch_size": 16, "num_frames": 16, "tubelet_size": 2,
                  "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                  "use_mean_pooling": False, "layer_norm_eps": 1e-12, "qkv_bias": True, "norm_pix_loss": True},
            processor={**_CROP, "size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224},
                       "resample": 2, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD},
            reference="processor", constructing=videomae_fast_tables,
        ),
        Family(
            "siglip", "SigLIP (per frame): pooled output and patch tokens; default google/siglip-so400m-patch14-384",
            "SiglipVisionModel", siglip_tokens, "frame=pooler_output (attention pool); patch=last_hidden_state",
            "google/siglip-so400m-patch14-384", ("siglip", "siglip_vision_model"),
            arch={"model_type": "siglip_vision_model", "image_size": 384, "patch_size": 14, "hidden_size": 1152,
                  "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16},
            processor={"do_resize": True, "do_rescale": True, "do_normalize": True,
                       "size": {"height": 384, "width": 384}, "resample": 3,
                       "image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5)},
        ),
        Family(
            "clip", "CLIP ViT (per frame): post-LN CLS and patch tokens; default openai/clip-vit-base-patch16",
            "CLIPVisionModel", clip_tokens, "frame=pooler_output (post-LN CLS); patch=post-LN patch tokens",
            "openai/clip-vit-base-patch16", ("clip", "clip_vision_model"),
            arch={"model_type": "clip_vision_model", "image_size": 224, "patch_size": 16, "hidden_size": 768,
                  "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "projection_dim": 512, "hidden_act": "quick_gelu"},
            processor={**_CROP, "size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224},
                       "resample": 3, "image_mean": (0.48145466, 0.4578275, 0.40821073),
                       "image_std": (0.26862954, 0.26130258, 0.27577711)},
        ),
        Family(
            "timesformer", "TimeSformer (video-native): per-frame patch tokens; default facebook/timesformer-base-"
            "finetuned-k400", "TimesformerModel", timesformer_tokens,
            "frame=mean of the frame's patch tokens; patch=last_hidden_state per frame",
            "facebook/timesformer-base-finetuned-k400", ("timesformer",),
            arch={"model_type": "timesformer", "image_size": 224, "patch_size": 16, "num_frames": 8,
                  "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
            processor={**_CROP, "size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224},
                       "resample": 2, "image_mean": (0.45, 0.45, 0.45), "image_std": (0.225, 0.225, 0.225)},
        ),
        Family(
            "vjepa2", "V-JEPA 2 (video-native, tubelets of 2): encoder tokens; default "
            "facebook/vjepa2-vitl-fpc64-256", "VJEPA2Model", vjepa2_tokens,
            "frame=mean of the tubelet's patch tokens; patch=encoder last_hidden_state",
            "facebook/vjepa2-vitl-fpc64-256", ("vjepa2",),
            arch={"model_type": "vjepa2", "crop_size": 256, "patch_size": 16, "frames_per_clip": 64,
                  "tubelet_size": 2, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
            processor={**_CROP, "size": {"shortest_edge": 292}, "crop_size": {"height": 256, "width": 256},
                       "resample": 2, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD},
        ),
        Family(
            "hf", "any Hugging Face image model by folder or id (hf:/path/to/model): CLS/pooled and patch tokens",
            "AutoModel", generic_tokens, "frame=CLS, else pooler_output, else patch mean; patch=tokens after prefix",
            frame_tokens=("default", "auto", "cls", "pooler", "mean"),
        ),
    )
}


def available(family: Family) -> bool:
    """Whether the installed transformers has the family's model (V-JEPA 2 needs transformers >= 4.53); looked up
    on disk, so registering the plugins does not import transformers."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        return False
    return family.name == "hf" or (Path(spec.origin).parent / "models" / family.name).is_dir()
