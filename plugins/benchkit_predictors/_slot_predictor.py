"""Predictors of a fixed number of target slots, each one class: the contract shared by VEDiT and the transformer
baselines (specs/vedit.md §1, §3, §4).

A procedural task's targets are ``tokens = [BOS, c_1 + 2, ..., c_n + 2, EOS]`` with ``n = spec.max_len - 2`` fixed
(1 for step forecasting and task classification, T for procedure planning, Z for anticipation). A subclass
computes ``logits(prefix) -> (B, n, A)`` over the vocabulary's A action classes; this base turns them into the
loss (cross-entropy averaged over the slots that hold an action: a shorter, padded sequence leaves its EOS and PAD
slots out; ``train.label_smoothing`` arrives as the loss's ``label_smoothing``), greedy token ids
``[c_1 + 2, ..., c_n + 2, EOS]`` and sampled candidates (Ego4D's K sequences).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchkit.api import PredictorSpec

IGNORE = -100


class SlotPredictor(nn.Module):
    def __init__(self, spec: PredictorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.num_targets = spec.max_len - 2
        self.num_classes = len(spec.vocabulary.actions)
        self.eos = spec.vocabulary.eos
        if self.num_targets < 1:
            raise ValueError(f"max_len {spec.max_len} leaves no target slot between BOS and EOS")

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def slot_targets(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` class ids of the target slots; slots without an action token are ``IGNORE``."""
        slots = tokens[:, 1 : 1 + self.num_targets]
        if slots.shape[1] < self.num_targets:
            slots = F.pad(slots, (0, self.num_targets - slots.shape[1]))
        classes = slots - 2
        return torch.where((classes >= 0) & (classes < self.num_classes), classes, IGNORE)

    def classification_loss(
        self, logits: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        targets = self.slot_targets(tokens)
        total = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum",
            label_smoothing=label_smoothing,
        )
        return total / (targets != IGNORE).sum().clamp(min=1)

    def loss(self, prefix: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy over the action slots, smoothed by ``label_smoothing`` (``train.label_smoothing``)."""
        return self.classification_loss(self.logits(prefix), tokens, label_smoothing)

    def to_tokens(self, classes: torch.Tensor) -> list[list[int]]:
        return [[c + 2 for c in row] + [self.eos] for row in classes.tolist()]

    def greedy_tokens(self, prefix: torch.Tensor) -> torch.Tensor:
        """``(B, n + 1)`` token ids, the argmax class of every slot then EOS, as one tensor (the form
        ``torch.func.vmap`` runs over K candidates at once, benchkit/learn/together.py)."""
        classes = self.logits(prefix).argmax(-1) + 2
        return torch.cat([classes, torch.full_like(classes[:, :1], self.eos)], dim=1)

    @torch.inference_mode()
    def predict(self, prefix: torch.Tensor) -> list[list[int]]:
        """The argmax class of every slot, then EOS."""
        return self.greedy_tokens(prefix).tolist()

    @torch.inference_mode()
    def candidates(self, prefix: torch.Tensor, k: int = 5) -> list[list[list[int]]]:
        """``k`` token sequences per sample (Ego4D LTA): independent ``Categorical(logits)`` draws per slot from
        one forward pass; ``k = 1`` is the argmax sequence."""
        logits = self.logits(prefix)
        if k == 1:
            return [[seq] for seq in self.to_tokens(logits.argmax(-1))]
        draws = torch.distributions.Categorical(logits=logits.float()).sample((k,))  # (k, B, n)
        per_sample = draws.transpose(0, 1)
        return [self.to_tokens(sample) for sample in per_sample]
