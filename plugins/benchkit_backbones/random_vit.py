"""``random-vit``: a small ViT with seeded random weights, frozen; the cheap CPU backbone of the quickstart.

Random-weight encoders are a standard reference point (how much does pretraining add?), and this one is a real ViT:
a convolutional patch embedding, fixed 2D sin-cos positions, a CLS token, pre-LN transformer blocks and a final
LayerNorm. It returns the normalised CLS token per frame (like DINOv2's ``x_norm_clstoken``) and the normalised
patch tokens on their grid (``x_norm_patchtokens``). Weights depend only on the keyword arguments and ``seed``.
"""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F
from benchkit_aggregators._positions import sincos_2d
from torch import nn

from benchkit.api import Features, hookimpl


class RandomViT(nn.Module):
    """Frozen random-weight ViT: ``(B, T, H, W, 3)`` uint8 videos → CLS and patch tokens."""

    def __init__(
        self, image_size: int = 32, patch: int = 4, dim: int = 64, depth: int = 2, heads: int = 4, seed: int = 0
    ) -> None:
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch}")
        self.config = dict(image_size=image_size, patch=patch, dim=dim, depth=depth, heads=heads, seed=seed)
        self.grid = (image_size // patch, image_size // patch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Conv2d(3, dim, patch, stride=patch)
            self.cls = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
            layer = nn.TransformerEncoderLayer(
                dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False) if depth else nn.Identity()
            self.norm = nn.LayerNorm(dim)
        self.register_buffer("pos", sincos_2d(*self.grid, dim), persistent=False)
        self.requires_grad_(False).eval()

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return "random-vit:" + h.hexdigest()[:16]

    def preprocess(self, videos: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = videos.shape
        x = videos.reshape(b * t, h, w, c).permute(0, 3, 1, 2).float().div(255.0)
        size = self.config["image_size"]
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return (x - 0.5) / 0.5

    @torch.inference_mode()
    def encode(self, videos: torch.Tensor) -> Features:
        b, t = videos.shape[:2]
        x = self.embed(self.preprocess(videos)).flatten(2).transpose(1, 2) + self.pos
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)
        x = self.norm(self.blocks(x))
        d = x.shape[-1]
        return Features(frame=x[:, 0].reshape(b, t, d), patch=x[:, 1:].reshape(b, t, -1, d), grid=self.grid)


@hookimpl
def benchkit_register(registry):
    registry.backbone("random-vit", RandomViT)
