"""``invpatch``: the InvPatch aggregation layer (spec invpatch.md §1; paper §III-B), patch level only.

Patch tokens ``(B, T, P, C)`` on ``spec.grid`` go through three stages to a single prefix token ``(B, 1, out_dim)``:

a) 2x2 attention patch merging (``AttentionPatchMerging``): the four sub-grids of each 2x2 window form a 4-token
   set, LayerNorm, multi-head self-attention inside the window, mean of the 4 outputs, ``Linear(C, C)``.
   No residual and no position inside the window. ``(B, T, P, C)`` → ``(B, T, P/4, C)``, row-major.
b) Cross-frame Communication Transformer (``CrossFrameCommunicationTransformer``, X-CLIP's CCT without its conv
   stem): a learnable frame token per frame, a learnable positional embedding shared by all frames, and blocks of
   message token → CFA across the frames of a video → IFA inside each frame → FFN. Output: one token per frame.
c) Frame ViT (``FrameViT``, lucidrains' SimpleViT): fixed 2D sin-cos positions over a ``pos_h x pos_w`` grid of
   frames (the only place temporal order enters), pre-LN blocks, final LayerNorm, mean over frames, ``Linear``.

At ViT-B width with the VideoMAE layout (C = 768, T = 8, 49 merged patches) the layer has 2,954,496 (merge) +
30,759,168 (CCT) + 11,222,784 (frame ViT) = 44,936,448 parameters (spec: 2.95M + 30.76M + 11.22M = 44.94M).

Notes on the reference code (``nrasajski/InvPatch``, ``models/merging_blocks.py``, ``idm/models/merging_vit.py``):

- The reference CCT also creates ``ln_video_post``, a LayerNorm it never uses (1,536 parameters that never get a
  gradient). It is left out here; the spec's 30.76M rounds the same either way. Load a reference state dict with
  those two keys dropped.
- The reference reads the patch grid as ``sqrt(P)``; here it comes from ``spec.grid``, so non-square grids work.
- X-CLIP's ``drop_path`` draws its mask over dimension 0 of a sequence-first tensor, i.e. per *token position*
  (shared by the whole batch), not per sample. ``drop_path_mode="sample"`` (default) is stochastic depth as
  intended: the residual branch is dropped per video. ``drop_path_mode="token"`` reproduces the reference.
- The reference does not call the CCT's ``init_weights``, so Linear, LayerNorm and attention layers keep PyTorch's
  default initialisation; the class token, the positional embedding and ``proj`` are ``C**-0.5 * randn``. Same here.
- Submodule names follow the reference inside each stage (``attn``/``output_proj``/``norm``;
  ``class_embedding``/``positional_embedding``/``ln_pre``/``transformer.resblocks``/``ln_post``/``proj``;
  ``transformer.layers``/``transformer.norm``/``to_latent``); the stages are ``merge``, ``cct``, ``frame_vit``
  (the reference's ``patch_merging``, ``visual``, ``mit``).
- ``merge=False`` is an ablation, not the paper: no 2x2 merging, the CCT sees every patch token with its own
  position (so it knows where inside a 2x2 window the motion is; the merge cannot, by design). It costs 4x the CCT's
  tokens; docs/synthetic.md, "InvPatch at the paper's geometry", uses it.
- ``layer_norm=False`` is an ablation too: every LayerNorm of the three stages (the merge's, the CCT's ``ln_pre``,
  ``ln_post`` and its blocks', the frame ViT's) becomes the identity. A pre-LN attention layer lets a token be
  seen by the others only through its normalised form, so the size of a token (how much a patch changed, on
  frame differences) is lost; without the norms it is kept. docs/synthetic.md measures what it changes.
- ``pool_frames=False`` is an ablation too: the frame ViT's T output tokens go to the decoder (``(B, T, out_dim)``)
  instead of their mean, one prefix token. It asks whether the single token is what holds InvPatch back where
  per-frame pooling rows, which hand the decoder a token per frame, learn; docs/synthetic.md measures it.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from benchkit.api import FeatureSpec, hookimpl
from benchkit_aggregators._positions import sincos_2d

DROP_PATH_MODES = ("sample", "token")
MERGE_HEADS = 3  # the paper's merge attention heads


def frame_grid(frames: int, pos_h: int | None = None, pos_w: int | None = None) -> tuple[int, int]:
    """The ``pos_h x pos_w`` grid the frame ViT lays ``frames`` frames on (frame ``t`` at row ``t // pos_w``,
    column ``t % pos_w``). Unset sides are derived from ``frames``: with neither given, the most square
    factorisation with ``pos_h <= pos_w`` (16 → 4x4, 8 → 2x4, 32 → 4x8)."""
    if frames < 1:
        raise ValueError(f"invpatch needs at least one frame, got {frames}")
    if pos_h is None and pos_w is None:
        pos_h = max(d for d in range(1, math.isqrt(frames) + 1) if frames % d == 0)
        pos_w = frames // pos_h
    elif pos_h is None or pos_w is None:
        given = pos_h if pos_h is not None else pos_w
        if given < 1 or frames % given:
            raise ValueError(f"frame grid: {frames} frames cannot be laid out with a side of {given}")
        pos_h, pos_w = (given, frames // given) if pos_h is not None else (frames // given, given)
    if pos_h < 1 or pos_w < 1 or pos_h * pos_w != frames:
        raise ValueError(
            f"frame grid {pos_h}x{pos_w} holds {pos_h * pos_w} frames but the features have {frames}: "
            "pos_h * pos_w must equal the number of frames"
        )
    return pos_h, pos_w


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class DropPath(nn.Module):
    """Stochastic depth on a residual branch, active only in training.

    ``mode="sample"``: one keep/drop draw per sample (dimension 0). ``mode="token"``: one draw per sequence position
    (dimension -2), shared by the whole batch, which is what X-CLIP's ``drop_path`` does on its sequence-first
    tensors. Kept values are scaled by ``1 / (1 - p)``.
    """

    def __init__(self, p: float = 0.0, mode: str = "sample") -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        if mode not in DROP_PATH_MODES:
            raise ValueError(f"drop_path_mode must be one of {DROP_PATH_MODES}, got {mode!r}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        per_sample = self.mode == "sample"
        shape = (x.shape[0],) + (1,) * (x.ndim - 1) if per_sample else (1,) * (x.ndim - 2) + (x.shape[-2], 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


# ---------------------------------------------------------------------------------------------------------------
# a) 2x2 attention patch merging


class AttentionPatchMerging(nn.Module):
    """``(B, T, h*w, C)`` → ``(B, T, h/2*w/2, C)``: attention over each 2x2 window, mean, ``Linear(C, C)``."""

    def __init__(self, dim: int, grid: tuple[int, int], heads: int = 3) -> None:
        super().__init__()
        h, w = grid
        if h % 2 or w % 2 or h < 2 or w < 2:
            raise ValueError(
                f"patch grid {h}x{w} cannot be merged 2x2: both sides must be even (InvPatch merges 2x2 windows)"
            )
        if dim % heads:
            raise ValueError(f"patch merging: width {dim} is not divisible by merge_heads={heads}")
        self.grid = (h, w)
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.output_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        h, w = self.grid
        # patch (2y + i, 2x + j) of the row-major grid → window (y, x), position i * 2 + j inside it
        windows = rearrange(x, "b t (y i x j) c -> (b t y x) (i j) c", y=h // 2, i=2, x=w // 2, j=2)
        windows = self.norm(windows)
        merged = self.attn(windows, windows, windows, need_weights=False)[0].mean(dim=1)
        return rearrange(self.output_proj(merged), "(b t n) c -> b t n c", b=b, t=t)  # windows row-major


# ---------------------------------------------------------------------------------------------------------------
# b) Cross-frame Communication Transformer


class CrossFrameBlock(nn.Module):
    """One CCT block on ``(B, T, L, C)`` (token 0 of each frame is its frame token)."""

    def __init__(self, dim: int, heads: int, drop_path: float = 0.0, drop_path_mode: str = "sample") -> None:
        super().__init__()
        self.message_fc = nn.Linear(dim, dim)
        self.message_ln = nn.LayerNorm(dim)
        self.message_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(dim, 4 * dim)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * dim, dim))]
            )
        )
        self.ln_2 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path, drop_path_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, c = x.shape
        # Message token per frame, then CFA: attention across the T message tokens of each video.
        msg = self.message_fc(x[:, :, 0])  # (B, T, C)
        m = self.message_ln(msg)
        msg = msg + self.drop_path(self.message_attn(m, m, m, need_weights=False)[0])
        # IFA: attention inside each frame over frame token + patches + message token; the message is then dropped.
        x = torch.cat([x, msg.unsqueeze(2)], dim=2)  # (B, T, L+1, C)
        y = self.ln_1(x).reshape(b * t, n + 1, c)
        x = x + self.drop_path(self.attn(y, y, y, need_weights=False)[0].reshape(b, t, n + 1, c))
        x = x[:, :, :n]
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class CrossFrameTransformer(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, drop_path: float, drop_path_mode: str) -> None:
        super().__init__()
        # linspace(0, drop_path, layers), computed without torch so the module can be built on the meta device
        rates = [drop_path * i / (layers - 1) if layers > 1 else 0.0 for i in range(layers)]
        self.resblocks = nn.Sequential(*[CrossFrameBlock(dim, heads, r, drop_path_mode) for r in rates])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class CrossFrameCommunicationTransformer(nn.Module):
    """``(B, T, N, C)`` merged patches → ``(B, T, C)``: one frame token per frame (X-CLIP CCT, no conv stem)."""

    def __init__(
        self, dim: int, tokens: int, layers: int = 3, heads: int = 4, drop_path: float = 0.1,
        drop_path_mode: str = "sample",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"cross-frame transformer: width {dim} is not divisible by cct_heads={heads}")
        scale = dim**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(dim))
        self.positional_embedding = nn.Parameter(scale * torch.randn(tokens + 1, dim))  # shared by all frames
        self.ln_pre = nn.LayerNorm(dim)
        self.transformer = CrossFrameTransformer(dim, layers, heads, drop_path, drop_path_mode)
        self.ln_post = nn.LayerNorm(dim)
        self.proj = nn.Parameter(scale * torch.randn(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _, c = x.shape
        cls = self.class_embedding.to(x.dtype).expand(b, t, 1, c)
        x = torch.cat([cls, x], dim=2) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, :, 0]) @ self.proj.to(x.dtype)


# ---------------------------------------------------------------------------------------------------------------
# c) Frame ViT (SimpleViT over a 2D grid of frames)


class Attention(nn.Module):
    """Pre-LN multi-head self-attention without biases (SimpleViT)."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.to_out = nn.Linear(heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.to_qkv(self.norm(x)), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)  # scale head_dim ** -0.5
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FrameTransformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads, head_dim), FeedForward(dim, mlp_dim)]) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = x + attn(x)
            x = x + ff(x)
        return self.norm(x)


class FrameViT(nn.Module):
    """``(B, T, C)`` frame tokens → ``(B, 1, out_dim)``: sin-cos positions on the frame grid, blocks, mean, Linear.
    ``pool=False``: no mean, ``(B, T, out_dim)``, a token per frame."""

    def __init__(
        self, dim: int, out_dim: int, grid: tuple[int, int], depth: int = 3, heads: int = 4, head_dim: int = 192,
        mlp_dim: int | None = None, pool: bool = True,
    ) -> None:
        super().__init__()
        self.register_buffer("pos_embedding", sincos_2d(grid[0], grid[1], dim), persistent=False)
        self.transformer = FrameTransformer(dim, depth, heads, head_dim, mlp_dim or dim)
        self.to_latent = nn.Linear(dim, out_dim)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transformer(x + self.pos_embedding.to(x.dtype))
        return self.to_latent(x.mean(dim=1, keepdim=True) if self.pool else x)


# ---------------------------------------------------------------------------------------------------------------


class InvPatch(nn.Module):
    """The InvPatch aggregation layer: patch tokens ``(B, T, P, C)`` → one prefix token ``(B, 1, out_dim)``.

    Defaults are the paper's (C from the features; 3 CCT blocks x 4 heads; merge attention with 3 heads; 3 frame-ViT
    blocks x 4 heads of 192; frame-ViT MLP width C; drop-path linspace(0, 0.1, 3)). The frame grid is derived from
    the number of frames unless ``pos_h``/``pos_w`` are given (see ``frame_grid``). ``merge=False``,
    ``layer_norm=False`` and ``pool_frames=False``: the ablations without 2x2 merging, without LayerNorm and
    without the mean over frames (module docstring).
    """

    num_tokens = 1

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        out_dim: int | None = None,
        cct_layers: int = 3,
        cct_heads: int = 4,
        merge_heads: int = MERGE_HEADS,
        vit_layers: int = 3,
        vit_heads: int = 4,
        vit_head_dim: int = 192,
        vit_mlp_dim: int | None = None,
        drop_path: float = 0.1,
        drop_path_mode: str = "sample",
        pos_h: int | None = None,
        pos_w: int | None = None,
        merge: bool = True,
        layer_norm: bool = True,
        pool_frames: bool = True,
    ) -> None:
        super().__init__()
        if spec.level != "patch":
            raise ValueError(f"invpatch aggregates patch tokens; got level {spec.level!r}")
        dim = spec.dim
        if dim % 4:
            raise ValueError(f"invpatch: width {dim} must be divisible by 4 for the frame ViT's 2D sin-cos positions")
        self.spec = spec
        self.out_dim = out_dim or dim
        self.frame_grid = frame_grid(spec.frames, pos_h, pos_w)
        if merge:
            self.merge = AttentionPatchMerging(dim, spec.grid, merge_heads)
            merged = (spec.grid[0] // 2) * (spec.grid[1] // 2)
        else:  # the ablation: every patch token goes to the CCT
            if merge_heads != MERGE_HEADS:
                raise ValueError(f"merge_heads={merge_heads} has no effect with merge=False (nothing is merged)")
            self.merge, merged = nn.Identity(), spec.patches
        self.cct = CrossFrameCommunicationTransformer(dim, merged, cct_layers, cct_heads, drop_path, drop_path_mode)
        self.frame_vit = FrameViT(dim, self.out_dim, self.frame_grid, vit_layers, vit_heads, vit_head_dim, vit_mlp_dim,
                                  pool_frames)
        self.num_tokens = 1 if pool_frames else spec.frames
        if not layer_norm:  # the ablation: every LayerNorm of the three stages is the identity
            for parent in list(self.modules()):
                for name, child in list(parent.named_children()):
                    if isinstance(child, nn.LayerNorm):
                        setattr(parent, name, nn.Identity())

    def components(self) -> dict[str, nn.Module]:
        """The three stages, e.g. for per-component parameter counts."""
        return {"merge": self.merge, "cct": self.cct, "frame_vit": self.frame_vit}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        expected = (spec.frames, spec.patches, spec.dim)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"invpatch built for (B, {spec.frames}, {spec.patches}, {spec.dim}) patch tokens "
                f"(grid {spec.grid[0]}x{spec.grid[1]}), got {tuple(x.shape)}"
            )
        return self.frame_vit(self.cct(self.merge(x)))  # (B, 1, out_dim); pool_frames=False: (B, T, out_dim)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("invpatch", InvPatch, levels=("patch",))
