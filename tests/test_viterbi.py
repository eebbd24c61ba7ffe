"""Viterbi decoding of plans over the training transition matrix (spec vedit.md §3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchkit.sequence.viterbi import transition_counts, transition_matrix, viterbi


def test_transition_matrix_by_hand():
    seqs = [[0, 1, 2], [0, 1, 1]]
    np.testing.assert_array_equal(transition_counts(seqs, 3), [[0, 2, 0], [0, 1, 1], [0, 0, 0]])
    m = transition_matrix(seqs, 3)
    np.testing.assert_allclose(m, [[0, 1, 0], [0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])  # unseen row: uniform
    smoothed = transition_matrix(seqs, 3, smoothing=1.0)  # COIN's +1
    np.testing.assert_allclose(smoothed, [[1 / 5, 3 / 5, 1 / 5], [1 / 5, 2 / 5, 2 / 5], [1 / 3, 1 / 3, 1 / 3]])


def test_decoding_repairs_an_impossible_greedy_plan():
    """Cycle 0 → 1 → 2 → 0: greedy [0, 2, 1] is impossible; the best allowed path is 0, 1, 2 (0.6 x 0.1 x 0.4 =
    0.024 against 1, 2, 0: 0.021 and 2, 0, 1: 0.010)."""
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.1, 0.7], [0.1, 0.5, 0.4]])
    cycle = transition_matrix([[0, 1, 2, 0]], 3)
    assert list(probs.argmax(1)) == [0, 2, 1]
    assert viterbi(np.log(probs), cycle) == [0, 1, 2]


def test_matches_brute_force_in_probability_space():
    """SCHEMA's rule: argmax over paths of prior x prod(emission x transition), uniform prior."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        t, a = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        probs = rng.dirichlet(np.ones(a), size=t)
        trans = rng.dirichlet(np.ones(a), size=a) * (rng.random((a, a)) > 0.3)
        best, best_p = None, -1.0
        for path in itertools.product(range(a), repeat=t):
            p = np.prod(probs[np.arange(t), path]) * np.prod([trans[x, y] for x, y in itertools.pairwise(path)])
            if p > best_p:
                best, best_p = list(path), p
        if best_p > 0:
            assert viterbi(np.log(probs), trans) == best


def test_ties_take_the_lowest_class_and_impossible_plans_fall_back_to_argmax():
    assert viterbi(np.log(np.full((2, 2), 0.5)), np.full((2, 2), 0.5)) == [0, 0]
    never = np.zeros((3, 3))
    probs = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert viterbi(np.log(probs + 1e-12), never) == [1, 0]


def test_prior_and_shape_checks():
    probs = np.log(np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert viterbi(probs, np.eye(2), log_prior=np.log([0.2, 0.8])) == [1, 1]
    with pytest.raises(ValueError, match="do not match"):
        viterbi(probs, np.eye(3))
