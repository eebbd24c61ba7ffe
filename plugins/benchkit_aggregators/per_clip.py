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
from benchkit_aggregators._inner import build_inner


class PerClip(nn.Module):
    """Aggregate each clip with ``inner`` (an aggregator name, preset, or mapping with ``name``)."""

    def __init__(self, spec: FeatureSpec, inner: str | dict[str, Any] = "mean", clip_frames: int | None = None) -> None:
        super().__init__()
        if clip_frames is None:
            clip_spec = FeatureSpec(level="frame", dim=spec.dim, frames=spec.patches, grid=(1, 1))
            why = ", which a clip's token sequence is; give clip_frames to run a patch-level aggregator on clips"
            self.clips = spec.frames
        else:
            if clip_frames < 1 or spec.frames % clip_frames:
                raise ValueError(f"clip_frames={clip_frames} must divide the window's {spec.frames} frames")
            clip_spec = FeatureSpec(level="patch", dim=spec.dim, frames=clip_frames, grid=spec.grid)
            why = ", which clip_frames gives it; drop clip_frames"
            self.clips = spec.frames // clip_frames
        self.inner = build_inner(inner, clip_spec, why)
        self.clip_frames = clip_frames
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
