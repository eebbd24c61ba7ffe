from __future__ import annotations

import math

import pytest
from benchkit_metrics.accuracy import token_accuracy

from benchkit.report.stats import paired_comparison, summarize
from benchkit.sequence.baselines import baseline_predictions


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
    assert summarize([1.0]).n == 1 and summarize([]).n == 0


def test_paired_comparison_by_hand():
    # fold 3 is only in b: left out. Differences 2, 1, 3.5: mean 13/6, s² = (1/36 + 49/36 + 64/36) / 2 = 19/12
    a = {0: 90.0, 1: 92.0, 2: 95.5}
    b = {0: 88.0, 1: 91.0, 2: 92.0, 3: 99.0}
    r = paired_comparison(a, b)
    se = math.sqrt(19 / 12) / math.sqrt(3)
    t = 13 / 6 / se
    assert r.n == 3 and r.mean_diff == pytest.approx(13 / 6)
    assert r.half_width == pytest.approx(4.302652729911275 * se)  # t(0.975, 2), as summarize
    assert r.t == pytest.approx(t) and t == pytest.approx(2.9824, abs=1e-4)
    # two-sided p with 2 degrees of freedom in closed form: 1 - t / sqrt(2 + t²)
    assert r.p == pytest.approx(1 - t / math.sqrt(2 + t**2))
    swapped = paired_comparison(b, a)
    assert swapped.mean_diff == pytest.approx(-13 / 6) and swapped.t == pytest.approx(-t) and swapped.p == r.p


def test_paired_comparison_edge_cases():
    # sequences pair by position; a NaN fold counts as absent
    r = paired_comparison([1.0, 2.0, math.nan, 4.0], [0.0, 1.0, 5.0, 2.0])
    assert r.n == 3 and r.mean_diff == pytest.approx(4 / 3)
    one = paired_comparison({0: 1.0}, {0: 0.5, 1: 2.0})  # one shared fold: no test
    assert one.n == 1 and one.mean_diff == 0.5 and math.isnan(one.t) and math.isnan(one.p)
    assert paired_comparison({}, {}).n == 0
    same = paired_comparison([1.0, 2.0], [1.0, 2.0])  # no difference at all
    assert same.mean_diff == 0.0 and math.isnan(same.t) and math.isnan(same.p)
    constant = paired_comparison([2.0, 3.0], [1.0, 2.0])  # the same non-zero difference on every fold
    assert constant.t == math.inf and constant.p == 0.0 and constant.half_width == 0.0


def test_baselines():
    train = [[1, 1, 2], [1, 3, 3]]
    assert baseline_predictions("majority", train, 2, 7, seed=0) == [[1, 1, 1], [1, 1, 1]]
    rnd = baseline_predictions("random", train, 500, 7, seed=0)
    assert all(len(r) == 3 for r in rnd) and {a for r in rnd for a in r} == set(range(7))
    acc = token_accuracy(rnd, [[0, 0, 0]] * 500)
    assert 100 / 7 - 3 < acc < 100 / 7 + 3  # uniform draws: ≈ 1/7 right
