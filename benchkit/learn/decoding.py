"""Decoding test predictions: the predictor's greedy ``predict``, Viterbi over the training transitions, and K
sampled candidate sequences (grid ``decode:``; spec vedit.md §3).

- Viterbi (procedure planning, SCHEMA's protocol): the predictor's per-slot log-probabilities ``logits(prefix)``
  ``(B, T, A)`` are decoded with the row-normalised step-transition matrix of the fold's training videos
  (``dataset.step_sequences(train_idx)``, smoothed by ``dataset.transition_smoothing``: COIN adds 1).
- Candidates (Ego4D long-term anticipation): ``predictor.candidates(prefix, K)`` returns K token sequences per
  sample; metrics registered with ``candidates=True`` (``ed``) take the best of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchkit.errors import DataError
from benchkit.learn.training import Batches, CellModel
from benchkit.sequence.viterbi import transition_matrix, viterbi


@torch.inference_mode()
def _per_batch(model: CellModel, batches: Batches, batch_size: int, device: torch.device,
               fn: Callable[[Any, torch.Tensor], list]) -> list:
    model.to(device).eval()
    out: list = []
    for x, _ in batches.epoch(batch_size, None, drop_last=False):
        out.extend(fn(model.predictor, model.prefix(x.to(device))))
    return out


def viterbi_decoder(dataset: Any, train_idx: np.ndarray, eos: int) -> Callable[[torch.Tensor], list[list[int]]]:
    """Per-slot scores ``(B, T, A)`` → token ids ``[c_1 + 2, ..., c_T + 2, EOS]`` per sample, Viterbi-decoded over
    the transitions of the fold's training videos ``train_idx``."""
    if not hasattr(dataset, "step_sequences"):
        raise DataError(f"decode.viterbi: dataset {type(dataset).__name__} has no step_sequences() to build the "
                        "transition matrix from")
    classes = len(dataset.vocabulary.actions)
    matrix = transition_matrix(dataset.step_sequences(train_idx.tolist()), classes,
                               float(getattr(dataset, "transition_smoothing", 0.0)))

    def decode(logits: torch.Tensor) -> list[list[int]]:
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return [[c + 2 for c in viterbi(lp, matrix)] + [eos] for lp in log_probs]

    return decode


def viterbi_tokens(model: CellModel, batches: Batches, batch_size: int, device: torch.device, dataset: Any,
                   train_idx: np.ndarray, eos: int) -> list[list[int]]:
    """Token ids ``[c_1 + 2, ..., c_T + 2, EOS]`` per test sample, Viterbi-decoded over the fold's training
    transitions."""
    decode = viterbi_decoder(dataset, train_idx, eos)
    return _per_batch(model, batches, batch_size, device, lambda predictor, prefix: decode(predictor.logits(prefix)))


def candidate_tokens(model: CellModel, batches: Batches, batch_size: int, device: torch.device,
                     k: int) -> list[list[list[int]]]:
    """K token sequences per test sample from ``predictor.candidates``."""
    return _per_batch(model, batches, batch_size, device, lambda predictor, prefix: predictor.candidates(prefix, k))
