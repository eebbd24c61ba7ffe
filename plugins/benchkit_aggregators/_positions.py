"""Fixed 2D sin-cos position embeddings (SimpleViT; spec invpatch.md §1c), shared by plugins that need them."""

from __future__ import annotations

import torch


def sincos_2d(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """``(h * w, dim)`` positions, row-major (cell ``i`` at row ``i // w``, column ``i % w``), ordered
    [x.sin, x.cos, y.sin, y.cos] with ``omega = 1 / temperature ** (arange(dim/4) / (dim/4 - 1))``."""
    if dim % 4:
        raise ValueError(f"2D sin-cos positions need a width divisible by 4, got {dim}")
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4) / max(1, dim // 4 - 1))
    y = y.flatten()[:, None] * omega[None]
    x = x.flatten()[:, None] * omega[None]
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1).float()
