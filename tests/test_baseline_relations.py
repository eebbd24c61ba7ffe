"""The random and majority baselines reproduce the paper's analytic relations (spec invpatch.md §3, Table I).

Seven actions, references of 15 transition actions (MUGEN's 16-frame windows). The reference actions are drawn
from a skewed distribution with the majority action at 31.57%, as in Table I, because neither relation depends on
the references being uniform.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from benchkit_metrics.accuracy import token_accuracy
from benchkit_metrics.precision import weighted_precision

from benchkit.sequence.baselines import baseline_predictions

ACTIONS, REF_LEN, N_TRAIN, N_TEST = 7, 15, 1000, 4000
P = np.array([0.3157, 0.16, 0.14, 0.12, 0.10, 0.09, 0.0743])


def _refs(n: int, seed: int) -> list[list[int]]:
    return np.random.default_rng(seed).choice(ACTIONS, size=(n, REF_LEN), p=P).tolist()


TRAIN, TEST = _refs(N_TRAIN, 1), _refs(N_TEST, 2)


def test_random_16_tokens_against_15_gives_15_16ths_of_one_seventh():
    preds = baseline_predictions("random", TRAIN, N_TEST, ACTIONS, seed=0, length_offset=1)
    assert {len(p) for p in preds} == {REF_LEN + 1} and {a for p in preds for a in p} == set(range(ACTIONS))
    expected = 100 * 15 / 16 / 7  # 13.39%, the paper's 13.40
    assert round(expected, 2) == 13.39
    # 15 N positions each right with probability 1/7 (the 16th meets the padding class): the accuracy's standard
    # deviation is sqrt(15 N p (1 - p)) / (16 N) = 0.134 points at N = 4000; allow 4 of them
    sd = 100 * math.sqrt(15 * N_TEST / 7 * 6 / 7) / (16 * N_TEST)
    assert sd == pytest.approx(0.134, abs=1e-3)
    assert token_accuracy(preds, TEST) == pytest.approx(expected, abs=4 * sd)
    # weighted precision: P(ref = c | pred = c) = 15/16 p_c, weight 15/16 p_c; PAD is never predicted (precision 0)
    # → (15/16)² Σ p_c² (about 0.17 points of sampling noise here; 0.7 allowed)
    freq = np.bincount(np.ravel(TEST), minlength=ACTIONS) / (N_TEST * REF_LEN)
    assert weighted_precision(preds, TEST) == pytest.approx(100 * (15 / 16) ** 2 * np.sum(freq**2), abs=0.7)


def test_random_of_the_reference_length_gives_one_seventh():
    preds = baseline_predictions("random", TRAIN, N_TEST, ACTIONS, seed=0)
    assert {len(p) for p in preds} == {REF_LEN}
    sd = 100 * math.sqrt(1 / 7 * 6 / 7 / (15 * N_TEST))
    assert token_accuracy(preds, TEST) == pytest.approx(100 / 7, abs=4 * sd)


@pytest.mark.parametrize("length_offset", [0, 1])
def test_majority_weighted_precision_is_accuracy_squared(length_offset):
    preds = baseline_predictions("majority", TRAIN, N_TEST, ACTIONS, seed=0, length_offset=length_offset)
    assert {tuple(p) for p in preds} == {(0,) * (REF_LEN + length_offset)}  # action 0 is the most frequent
    acc = token_accuracy(preds, TEST)
    # every pooled prediction is the majority action m: precision(m) = n_m / N = accuracy, with weight n_m / N;
    # every other class is never predicted (precision 0) → exactly accuracy², also when the hypotheses are longer
    assert weighted_precision(preds, TEST) == pytest.approx(acc**2 / 100, rel=1e-12)
    assert acc == pytest.approx(100 * P[0] * REF_LEN / (REF_LEN + length_offset), abs=1.0)


def test_paper_majority_row():
    assert round(31.57**2 / 100, 2) == 9.97  # Table I: accuracy 31.57, precision 9.97


def test_identity_needs_every_prediction_to_be_the_majority_action():
    # a reference longer than the hypothesis pads the hypothesis with PAD predictions, and the identity breaks:
    # [0, 0, 0, PAD] vs [0, 0, 1, 2] → accuracy 2/4; precision(0) = 2/3 with weight 2/4, PAD has no support → 1/3
    preds, refs = [[0, 0, 0]], [[0, 0, 1, 2]]
    acc = token_accuracy(preds, refs)
    assert acc == 50.0
    assert weighted_precision(preds, refs) == pytest.approx(100 / 3)
    assert weighted_precision(preds, refs) != pytest.approx(acc**2 / 100)
