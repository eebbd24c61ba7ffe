"""``precomputed``: the identity encoder for feature datasets (``kind = "features"``, docs/procedural.md).

A feature dataset's ``video(i)`` is already an embedding, ``(C, k, E)`` float: C observed clips of k tokens. This
backbone passes a batch ``(B, C, k, E)`` through as ``Features(frame = mean over k (B, C, E), patch = x (B, C, k,
E), grid = (1, k))``, so the frame level has one token per clip and the patch level every token of every clip.
``normalize`` L2-normalises each token first (off by default). Nothing is learned; the fingerprint is a constant
plus the options, the data's identity being the dataset's fingerprint.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from benchkit.api import Features, PluginError, hookimpl

VERSION = 1


class Precomputed:
    """Identity backbone over precomputed clip embeddings."""

    def __init__(self, normalize: bool = False) -> None:
        self.config = {"normalize": bool(normalize)}

    def fingerprint(self) -> str:
        return f"precomputed-v{VERSION}:" + json.dumps(self.config, sort_keys=True)

    def encode(self, videos: torch.Tensor) -> Features:
        if videos.ndim != 4 or not videos.is_floating_point():
            raise PluginError(
                f"the precomputed backbone takes float (B, C, k, E) clip embeddings from a feature dataset, got "
                f"{videos.dtype} {tuple(videos.shape)}"
            )
        x = videos.float()
        if self.config["normalize"]:
            x = F.normalize(x, dim=-1)
        return Features(frame=x.mean(dim=2), patch=x, grid=(1, x.shape[2]))


@hookimpl
def benchkit_register(registry):
    registry.backbone("precomputed", Precomputed)
