"""``netvlad``: NetVLAD over frame tokens or patch temporal tubes, then one linear projection → one prefix token
(spec invpatch.md §3; reference ``idm/models/vlad_layers.py``, after lyakaap ``NetVLAD-pytorch``).

Core (as the reference): K = 8 clusters, ``alpha = 50``; centroids ``c`` initialised with ``torch.rand``; the
soft-assignment is a 1x1 ``Conv1d`` initialised to weight ``2·alpha·c`` and bias ``-alpha·||c||`` (the norm, not
its square as in the NetVLAD paper — the reference's choice, kept) and then trained independently of ``c``;
``softmax`` over clusters; residuals ``sum_n a_kn (x_n - c_k)``; intra-normalisation per cluster, then global L2;
then ``Linear(K * D_eff, out_dim)`` (the reference's one-layer ``MLP``).

Descriptors:

- frame level: the T frame tokens, ``D_eff = D`` → ``Linear(8 * 768 = 6144, 768)`` at paper width.
- patch level, ``descriptors="tube"`` (default, the spec's decision): one descriptor per patch, its temporal tube
  — the concatenation over T of that patch's tokens, ``D_eff = T * D`` → ``Linear(8 * 16 * 768 = 98304, 768)``
  at T = 16 (≈75.7M parameters). This is what the reference does for 4-D ``(B, T, P, D)`` input (it permutes to
  ``(B, P, T, D)`` before flattening).
- patch level, ``descriptors="reference"``: the reference's branch for flattened 3-D VideoMAE tokens, reproduced:
  the time-major token sequence ``(B, T*P, D)`` is reshaped to ``(B, P, T*D)`` with no permute, so descriptor
  ``j`` is the T consecutive tokens ``j*T .. j*T+T-1`` — T neighbouring patches of one frame (when T divides P),
  grouping space rather than time. Same widths and parameter count as ``"tube"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from benchkit.api import FeatureSpec, hookimpl

DESCRIPTORS = ("tube", "reference")


class VLADCore(nn.Module):
    """NetVLAD pooling of ``(B, N, dim)`` descriptors into an L2-normalised ``(B, clusters * dim)`` vector."""

    def __init__(self, dim: int, clusters: int = 8, alpha: float = 50.0) -> None:
        super().__init__()
        self.clusters = clusters
        self.alpha = alpha
        self.centroids = nn.Parameter(torch.rand(clusters, dim))
        self.assign = nn.Conv1d(dim, clusters, kernel_size=1, bias=True)
        with torch.no_grad():
            self.assign.weight.copy_(2.0 * alpha * self.centroids.unsqueeze(-1))
            self.assign.bias.copy_(-alpha * self.centroids.norm(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.assign(x.transpose(1, 2)), dim=1)  # (B, K, N)
        # sum_n a_kn (x_n - c_k), without materialising the (B, K, N, dim) residuals
        vlad = a @ x - a.sum(dim=2, keepdim=True) * self.centroids  # (B, K, dim)
        vlad = F.normalize(vlad, p=2, dim=2)  # intra-normalisation
        return F.normalize(vlad.flatten(1), p=2, dim=1)


class NetVLAD(nn.Module):
    """NetVLAD aggregator: frame tokens or patch tubes → VLAD → ``Linear(clusters * D_eff, out_dim)``."""

    num_tokens = 1

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        clusters: int = 8,
        alpha: float = 50.0,
        out_dim: int | None = None,
        descriptors: str = "tube",
    ) -> None:
        super().__init__()
        if descriptors not in DESCRIPTORS:
            raise ValueError(f"descriptors must be one of {DESCRIPTORS}, not {descriptors!r}")
        self.level = spec.level
        self.descriptors = descriptors
        self.frames = spec.frames
        self.out_dim = out_dim or spec.dim
        self.descriptor_dim = spec.dim * spec.frames if spec.level == "patch" else spec.dim
        self.vlad = VLADCore(self.descriptor_dim, clusters, alpha)
        self.proj = nn.Linear(clusters * self.descriptor_dim, self.out_dim)

    def describe(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, N, D_eff)`` descriptors: frames, patch tubes, or the reference's regrouping."""
        if self.level == "frame":
            return x
        if self.descriptors == "tube":  # patch p's tokens over time, concatenated
            return rearrange(x, "b t p d -> b p (t d)")
        # the time-major token sequence cut into P runs of T consecutive tokens (no permute, as the reference)
        tokens = rearrange(x, "b t p d -> b (t p) d")
        return rearrange(tokens, "b (n k) d -> b n (k d)", n=x.shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.vlad(self.describe(x))).unsqueeze(1)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("netvlad", NetVLAD, levels=("frame", "patch"))
