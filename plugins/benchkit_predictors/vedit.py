"""``vedit``: the VEDiT predictor — seen clips condition a flow-matching denoiser whose target clips, sampled from
noise by the guided 24-step Euler loop, are classified by an attentive classifier (specs/vedit.md §1-§3; paper
Algorithm 1, Table 7). Also ``attentive-probe``: the attentive classifier alone on the prefix tokens (§2).

Layout of one sample: the ``K = spec.prefix_tokens`` prefix tokens are ``S = K / k`` seen clips of
``k = tokens_per_clip`` tokens each (one token per clip when an aggregator such as InvPatch compresses each clip);
the ``n = spec.max_len - 2`` target slots are ``n / q`` target clips of ``k`` tokens (``q = slots_per_clip``
classes per target clip: 1, or 2 for Ego4D's interleaved (verb, noun) pairs), initialised as noise in encoder
space (width ``E = spec.prefix_dim``). Clip ``c`` sits at RoPE position ``c`` (``positions="clip"``: all ``k``
tokens of a clip share it; ``"token"``: ``c·k + i``). ``layout="forecast"``: seen clips at ``0 .. S-1``, targets at
``S ..`` (step forecasting, task classification, anticipation); ``"planning"``: the first ``ceil(S/2)`` seen
clips, then the targets, then the rest (procedure planning: start state, the T steps, goal state). Each target
clip's ``k`` final embeddings are pooled by one shared attentive classifier (``q`` queries per target clip,
one per slot) → logits over the A action classes.

Training is the paper's: the whole guided sampling loop runs with gradients and the task's cross-entropy is
backpropagated through it; ``fm_weight > 0`` adds an auxiliary flow-matching loss (beyond the paper) that
reconstructs one randomly masked seen clip from the others, ``||v - (ε - z0)||²`` at ``σ ~ U(0, 1)``.

``noise_std`` (default 1, the paper's ``ε ~ N(0, I)``) scales the start noise of the sampling loop and the noise of
the auxiliary loss alike, ``ε ~ N(0, noise_std² I)``. It exists for small clip embeddings: the synthetic procedural
features have norm ~1 per clip token, against ~5.7 for N(0, I) at width 32, and at guidance 1 the tiny VEDiT then
stalls on its training set, while a std of 0.2 trains (docs/vedit.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from benchkit.api import PredictorSpec, hookimpl
from benchkit_predictors._attentive_classifier import AttentiveClassifier
from benchkit_predictors._flow_matching import TRAIN_TIMESTEPS, EulerSchedule, add_noise, guide
from benchkit_predictors._slot_predictor import SlotPredictor
from benchkit_predictors._vedit_transformer import VEDiTTransformer

LAYOUTS = ("forecast", "planning")
UNCONDITIONAL = ("zero", "learned", "drop")
POSITIONS = ("clip", "token")


def default_heads(dim: int, preferred: int = 16) -> int:
    """The attentive classifier's heads: 16 (the spec's choice at E = 1152) or the largest divisor of 16 that
    divides the width."""
    return math.gcd(dim, preferred)


def clip_positions(layout: str, seen: int, targets: int) -> tuple[list[int], list[int]]:
    """Clip indices ``(target_positions (n), seen_positions (S))`` from a boolean target mask over ``S + n``
    clips, as Algorithm 1 derives them (``indices[target_mask]``, ``indices[~target_mask]``)."""
    before = seen if layout == "forecast" else math.ceil(seen / 2)
    mask = [False] * before + [True] * targets + [False] * (seen - before)
    return [i for i, m in enumerate(mask) if m], [i for i, m in enumerate(mask) if not m]


class VEDiT(SlotPredictor):
    """VEDiT flow-matching predictor over seen clips (paper defaults: 12 blocks x 2048, 24 steps, guidance 7).

    The seen clips are the ``spec.prefix_tokens`` prefix tokens; the defaults are the paper's model (head dim 64).
    """

    def __init__(
        self,
        spec: PredictorSpec,
        layers: int = 12,
        dim: int = 2048,
        head_dim: int = 64,
        heads: int | None = None,
        steps: int = 24,
        shift: float = 1.0,
        guidance: float = 7.0,
        unconditional: str = "zero",
        tokens_per_clip: int = 1,
        slots_per_clip: int = 1,
        positions: str = "clip",
        layout: str = "forecast",
        classifier_depth: int = 1,
        classifier_heads: int | None = None,
        fm_weight: float = 0.0,
        zero_init: bool = True,
        checkpoint: bool = False,
        rope_base: float = 10000.0,
        noise_std: float = 1.0,
    ) -> None:
        super().__init__(spec)
        if not noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.noise_std = noise_std
        for name, value, allowed in (("unconditional", unconditional, UNCONDITIONAL), ("layout", layout, LAYOUTS),
                                     ("positions", positions, POSITIONS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        k = tokens_per_clip
        if k < 1 or spec.prefix_tokens % k:
            raise ValueError(f"{spec.prefix_tokens} prefix tokens are not whole clips of tokens_per_clip={k}")
        self.seen_clips, self.tokens_per_clip = spec.prefix_tokens // k, k
        if slots_per_clip < 1 or self.num_targets % slots_per_clip:
            raise ValueError(f"{self.num_targets} target slots are not whole clips of slots_per_clip={slots_per_clip}")
        self.target_clips = self.num_targets // slots_per_clip
        if fm_weight and self.seen_clips < 2:
            raise ValueError("the auxiliary flow-matching loss masks one seen clip and needs at least two")
        self.guidance, self.unconditional, self.fm_weight = guidance, unconditional, fm_weight
        self.checkpoint = checkpoint
        self.schedule = EulerSchedule.build(steps, shift)
        width = spec.prefix_dim
        self.denoiser = VEDiTTransformer(width, dim, layers, head_dim, heads, zero_init, rope_base)
        self.classifier = AttentiveClassifier(
            width, self.num_classes, classifier_heads or default_heads(width), classifier_depth, queries=slots_per_clip
        )
        self.null_seen = nn.Parameter(torch.zeros(1, 1, width)) if unconditional == "learned" else None
        target_clips, seen_clips = clip_positions(layout, self.seen_clips, self.target_clips)
        self.register_buffer("target_positions", self._token_positions(target_clips, positions), persistent=False)
        self.register_buffer("seen_positions", self._token_positions(seen_clips, positions), persistent=False)

    def _token_positions(self, clips: list[int], mode: str) -> torch.Tensor:
        k = self.tokens_per_clip
        return torch.tensor([c if mode == "clip" else c * k + i for c in clips for i in range(k)])

    def components(self) -> dict[str, nn.Module]:
        """Table 7 counts the denoiser only; the classifier is task-specific."""
        return {"denoiser": self.denoiser, "classifier": self.classifier}

    # -- sampling ------------------------------------------------------------------------------------------
    def _velocity(self, x: torch.Tensor, t: float, seen: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, torch.full((len(x),), t, device=x.device), seen, positions[None])  # t in float32

    def guided_velocity(self, x: torch.Tensor, t: float, seen: torch.Tensor) -> torch.Tensor:
        """``v_u + guidance · (v_c - v_u)``; the unconditional input is ``unconditional``: ``"zero"`` seen
        embeddings zeroed (positions kept), ``"learned"`` a learned null embedding, ``"drop"`` no seen tokens."""
        positions = torch.cat([self.target_positions, self.seen_positions])
        if self.guidance == 1.0:
            return self._velocity(x, t, seen, positions)
        if self.unconditional == "drop":
            v_c = self._velocity(x, t, seen, positions)
            v_u = self._velocity(x, t, seen[:, :0], self.target_positions)
        else:
            null = torch.zeros_like(seen) if self.null_seen is None else self.null_seen.expand_as(seen)
            v_c, v_u = self._velocity(torch.cat([x, x]), t, torch.cat([seen, null]), positions).chunk(2)
        return guide(v_c, v_u, self.guidance)

    def sample(self, prefix: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The guided Euler loop from ``noise`` (default ``ε ~ N(0, noise_std² I)``) to the target clips'
        embeddings ``(B, n_c·k, E)``; differentiable (with activation checkpointing per step when ``checkpoint``)."""
        x = self.noise_std * torch.randn(len(prefix), len(self.target_positions), prefix.shape[-1],
                                         device=prefix.device, dtype=prefix.dtype) if noise is None else noise
        for i, t in enumerate(self.schedule.timesteps.tolist()):
            if self.checkpoint and torch.is_grad_enabled():
                v = activation_checkpoint(self.guided_velocity, x, t, prefix, use_reentrant=False)
            else:
                v = self.guided_velocity(x, t, prefix)
            x = self.schedule.step(i, x, v)
        return x

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        x = self.sample(prefix).unflatten(1, (self.target_clips, self.tokens_per_clip))  # (B, n / q, k, E)
        return self.classifier(x.flatten(0, 1)).reshape(len(prefix), self.num_targets, self.num_classes)

    # -- training ------------------------------------------------------------------------------------------
    def flow_matching_loss(self, prefix: torch.Tensor) -> torch.Tensor:
        """Auxiliary loss: one random seen clip becomes the target at its own position, noised at
        ``σ ~ U(0, 1)``; the conditional velocity is regressed on ``ε - z0``."""
        j = int(torch.randint(self.seen_clips, ()))
        k = self.tokens_per_clip
        clips = prefix.unflatten(1, (self.seen_clips, k))
        z0 = clips[:, j]
        seen = torch.cat([clips[:, :j], clips[:, j + 1 :]], 1).flatten(1, 2)
        pos = self.seen_positions
        positions = torch.cat([pos[j * k : (j + 1) * k], pos[: j * k], pos[(j + 1) * k :]])
        sigma = torch.rand(len(prefix), device=prefix.device, dtype=prefix.dtype)
        noise = self.noise_std * torch.randn_like(z0)
        v = self.denoiser(add_noise(z0, noise, sigma), sigma.float() * TRAIN_TIMESTEPS, seen, positions[None])
        return F.mse_loss(v, noise - z0)

    def loss(self, prefix: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        loss = self.classification_loss(self.logits(prefix), tokens, label_smoothing)
        if self.fm_weight:
            loss = loss + self.fm_weight * self.flow_matching_loss(prefix)
        return loss


class AttentiveProbe(SlotPredictor):
    """V-JEPA attentive classifier on the prefix tokens, one query per target slot (no denoiser).

    specs/vedit.md §2; ``depth=4`` is the paper's step-classification variant with three self-attention blocks
    before the cross-attention.
    """

    def __init__(self, spec: PredictorSpec, depth: int = 1, heads: int | None = None, mlp_ratio: float = 4.0) -> None:
        super().__init__(spec)
        width = spec.prefix_dim
        self.classifier = AttentiveClassifier(
            width, self.num_classes, heads or default_heads(width), depth, mlp_ratio, queries=self.num_targets
        )

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        return self.classifier(prefix)


@hookimpl
def benchkit_register(registry):
    registry.predictor("vedit", VEDiT)
    registry.predictor("attentive-probe", AttentiveProbe)
