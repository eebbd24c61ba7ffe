from __future__ import annotations

import math

import pytest
from benchkit_metrics.accuracy import token_accuracy

from benchkit.baselines import baseline_predictions
from benchkit.stats import summarize


def test_accuracy_pads_the_shorter_sequence():
    # hyp shorter: 2 of 3 positions right; hyp longer: 2 of 4 right (two extra tokens vs padding) → 4 / 7
    assert token_accuracy([[1, 2], [0, 1, 5, 6]], [[1, 2, 3], [0, 1]]) == pytest.approx(100 * 4 / 7)
    assert token_accuracy([[3, 3]], [[3, 3]]) == 100.0
    assert math.isnan(token_accuracy([[]], [[]]))


def test_confidence_interval_by_hand():
    s = summarize([90.0, 92.0, 94.0])
    # mean 92, s = 2, t(0.975, 2) = 4.302652729911275 → 4.302652729911275 * 2 / sqrt(3)
    assert s.mean == 92.0 and s.n == 3
    assert s.half_width == pytest.approx(4.302652729911275 * 2 / math.sqrt(3))
    assert math.isnan(summarize([1.0]).half_width)


def test_baselines():
    train = [[1, 1, 2], [1, 3, 3]]
    assert baseline_predictions("majority", train, 2, 7, seed=0) == [[1, 1, 1], [1, 1, 1]]
    rnd = baseline_predictions("random", train, 500, 7, seed=0)
    assert all(len(r) == 3 for r in rnd) and {a for r in rnd for a in r} == set(range(7))
    acc = token_accuracy(rnd, [[0, 0, 0]] * 500)
    assert 100 / 7 - 3 < acc < 100 / 7 + 3  # uniform draws: ≈ 1/7 right
