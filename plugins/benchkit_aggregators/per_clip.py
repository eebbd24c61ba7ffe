"""``per-clip``: any aggregator applied to each clip on its own → its tokens, clip after clip.

Two ways to cut clips out of patch-level tokens ``(B, T, P, D)``:

- ``clip_frames: null`` (default): each of the ``T`` rows is a clip of ``P`` tokens. This is the layout of the
  precomputed clip features of the procedural datasets (``C`` clips of ``k`` tokens each; spec vedit.md §3), and
  ``inner`` is a **frame-level** aggregator run on each clip's ``k`` tokens.
- ``clip_frames: f``: consecutive runs of ``f`` frames are the clips (``T / f`` of them; ``f`` must divide ``T``),
  and ``inner`` is a **patch-level** aggregator run on each clip's ``(f, P, D)`` tokens. This is InvPatch
  compressing each clip of a video backbone's window to one token, with VEDiT predicting over the clips.

One weight set is shared by all clips. The output is ``(B, clips * inner.num_tokens, inner.out_dim)``: how a clip
compressor (attention pooling, an LSTM, NetVLAD, mean, InvPatch) feeds a predictor over clips such as VEDiT — the
cross-paper composition neither paper ran.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import nn

from benchkit.api import FeatureSpec, hookimpl


class PerClip(nn.Module):
    """Aggregate each clip with ``inner`` (an aggregator name, preset, or mapping with ``name``)."""

    def __init__(self, spec: FeatureSpec, inner: str | dict[str, Any] = "mean", clip_frames: int | None = None) -> None:
        super().__init__()
        from benchkit.api import get_registry

        registry = get_registry()
        name, kwargs = (inner, {}) if isinstance(inner, str) else (inner["name"], {
            k: v for k, v in inner.items() if k != "name"})
        resolved = registry.resolve("aggregator", name, kwargs)
        levels = resolved.entry.meta.get("levels", ())
        if clip_frames is None:
            if "frame" not in levels:
                raise ValueError(f"inner aggregator {name!r} does not take a frame-level token sequence; give "
                                 f"clip_frames to run a patch-level aggregator on clips of that many frames")
            clip_spec = FeatureSpec(level="frame", dim=spec.dim, frames=spec.patches, grid=(1, 1))
            self.clips = spec.frames
        else:
            if clip_frames < 1 or spec.frames % clip_frames:
                raise ValueError(f"clip_frames={clip_frames} must divide the window's {spec.frames} frames")
            if "patch" not in levels:
                raise ValueError(f"inner aggregator {name!r} does not take patch-level tokens, which clip_frames "
                                 f"gives it; drop clip_frames")
            clip_spec = FeatureSpec(level="patch", dim=spec.dim, frames=clip_frames, grid=spec.grid)
            self.clips = spec.frames // clip_frames
        self.clip_frames = clip_frames
        self.inner = registry.build("aggregator", resolved, clip_spec)
        self.num_tokens = self.clips * self.inner.num_tokens
        self.out_dim = self.inner.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip_frames is None:
            clips = rearrange(x, "b t p d -> (b t) p d")  # each row: one clip's k tokens
        else:
            clips = rearrange(x, "b (n f) p d -> (b n) f p d", f=self.clip_frames)  # consecutive frames: one clip
        out = self.inner(clips)  # (B * clips, tokens, out_dim)
        return rearrange(out, "(b n) k e -> b (n k) e", b=x.shape[0])  # clip after clip


@hookimpl
def benchkit_register(registry):
    registry.aggregator("per-clip", PerClip, levels=("patch",))
