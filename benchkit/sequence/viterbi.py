"""Viterbi decoding of procedure plans over a training transition matrix (spec vedit.md §3, procedure planning).

SCHEMA decodes each test plan with the row-normalised matrix of step-to-step transition counts of the training
videos (``P[i, j]`` = how often step ``j`` directly follows step ``i``; COIN adds 1 to every count first), a
uniform prior over the first step, and the model's per-position class probabilities as emissions. It works with
probabilities; this module works in log space (the same argmax without underflow). Two decisions of ours:

- a class never seen followed by another (an all-zero row) gets a uniform row instead of SCHEMA's 0/0 = NaN, so it
  constrains nothing rather than poisoning the trellis;
- ties go to the lowest class index at every step, as ``numpy.argmax`` does in the reference.

Wiring (``decode: {viterbi: true}`` in a grid, ``benchkit/learn/decoding.py``): ``transition_matrix(train_sequences,
num_classes, smoothing)`` once per fold, from the full step sequences of the training videos
(``dataset.step_sequences(train_idx)`` on the procedural datasets, whose ``transition_smoothing`` attribute says 1
for COIN and 0 otherwise), then ``viterbi(log_probs, matrix)`` per test sample with the predictor's ``(T, A)``
log-probabilities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def transition_counts(sequences: Iterable[Sequence[int]], num_classes: int) -> np.ndarray:
    """``(A, A)`` counts of ``b`` directly following ``a`` over every sequence."""
    counts = np.zeros((num_classes, num_classes), dtype=np.float64)
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        if len(seq) > 1:
            np.add.at(counts, (seq[:-1], seq[1:]), 1.0)
    return counts


def transition_matrix(sequences: Iterable[Sequence[int]], num_classes: int, smoothing: float = 0.0) -> np.ndarray:
    """Row-stochastic ``(A, A)`` matrix from training sequences, ``smoothing`` added to every count (COIN: 1)."""
    counts = transition_counts(sequences, num_classes) + smoothing
    totals = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / num_classes)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), uniform)


def viterbi(scores: np.ndarray, transition: np.ndarray, log_prior: np.ndarray | None = None) -> list[int]:
    """The most likely class sequence under ``transition`` given per-position ``scores`` ``(T, A)``.

    ``scores`` are log-probabilities (log-softmax of the predictor's logits); ``transition`` is a probability
    matrix (zeros allowed: those transitions become impossible). ``log_prior`` defaults to uniform. If every path
    is impossible (all scores -inf), the per-position argmax is returned.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or transition.shape != (scores.shape[1], scores.shape[1]):
        raise ValueError(f"scores {scores.shape} and transition {transition.shape} do not match")
    with np.errstate(divide="ignore"):
        log_t = np.log(np.asarray(transition, dtype=np.float64))
    trellis = scores[0] + (0.0 if log_prior is None else np.asarray(log_prior, dtype=np.float64))
    back = np.zeros(scores.shape, dtype=np.int64)
    for t in range(1, len(scores)):
        cand = trellis[:, None] + log_t  # (from, to)
        back[t] = np.argmax(cand, axis=0)
        trellis = cand[back[t], np.arange(cand.shape[1])] + scores[t]
    if not np.isfinite(trellis.max()):
        return [int(c) for c in scores.argmax(axis=1)]
    path = [int(np.argmax(trellis))]
    for t in range(len(scores) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]
