"""Procedural-task metrics against hand-computed values (spec vedit.md §3): top-1, planning, ED@Z."""

from __future__ import annotations

import math
import random

import pytest
from benchkit_metrics import anticipation as anticipation_module
from benchkit_metrics import planning as planning_module
from benchkit_metrics.anticipation import candidates, damerau_levenshtein, edit_distance_at, levenshtein
from benchkit_metrics.planning import mean_step_accuracy, schema_miou, set_miou, success_rate, top1_accuracy

from benchkit.registry.plugins import Registry

# -- top-1 -------------------------------------------------------------------------------------------------------


def test_top1_by_hand():
    # right, right (first token counts, the extra one does not), empty = wrong, wrong
    assert top1_accuracy([[3], [2, 5], [], [1]], [[3], [2], [4], [0]]) == 50.0
    assert top1_accuracy([[1], [2]], [[1], [2]]) == 100.0
    assert top1_accuracy([[2], [1]], [[1], [2]]) == 0.0
    assert math.isnan(top1_accuracy([], []))
    with pytest.raises(ValueError, match="one reference label"):
        top1_accuracy([[1, 2]], [[1, 2]])


# -- procedure planning ------------------------------------------------------------------------------------------

GT = [[1, 2, 3], [1, 2, 3], [1, 2, 3]]


def test_success_rate_and_macc_by_hand():
    preds = [[1, 2, 3], [1, 2, 4], [1, 2]]  # right, one step wrong, one step missing
    assert success_rate(preds, GT) == pytest.approx(100 / 3)
    assert mean_step_accuracy(preds, GT) == pytest.approx(100 * 7 / 9)  # 3 + 2 + 2 of 9 steps
    assert success_rate([[1, 2, 3, 4]], [[1, 2, 3]]) == 0.0  # an extra step fails the plan
    assert success_rate(GT, GT) == 100.0 and mean_step_accuracy(GT, GT) == 100.0
    assert success_rate([[3, 1, 2]], [[1, 2, 3]]) == 0.0 and mean_step_accuracy([[3, 1, 2]], [[1, 2, 3]]) == 0.0


def test_set_miou_by_hand():
    # same set in another order → 1; {1, 2} vs {1, 2, 3} → 2/3; disjoint → 0
    assert set_miou([[3, 2, 1], [1, 1, 2], [4, 5, 6]], GT) == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    assert set_miou([[]], [[1, 2]]) == 0.0  # empty hypothesis
    assert set_miou([[]], [[]]) == 100.0
    assert set_miou([[1, 2, 3, 3]], [[1, 2, 3]]) == 100.0  # length does not matter to a set


def test_schema_miou_is_bitwise():
    # SCHEMA acc_iou: 1&4 + 2&5 + 3&6 = 0 + 0 + 2; 1|4 + 2|5 + 3|6 = 5 + 7 + 7 → 2 / 19 = 10.5%, where set IoU is 0
    assert schema_miou([[1, 2, 3]], [[4, 5, 6]]) == pytest.approx(100 * (2 + 1e-6) / (19 + 1e-6))
    assert round(schema_miou([[1, 2, 3]], [[4, 5, 6]]), 1) == 10.5
    assert set_miou([[1, 2, 3]], [[4, 5, 6]]) == 0.0
    # a permutation: & = 1 + 2 + 1, | = 3 + 2 + 3 → 50, where the set IoU is 100
    assert schema_miou([[3, 2, 1]], [[1, 2, 3]]) == pytest.approx(100 * (4 + 1e-6) / (8 + 1e-6))
    # all-correct class 0 (0-based ids, as SCHEMA): (0 + eps) / (0 + eps) = 100; averaged over samples
    assert schema_miou([[0, 0, 0], [1, 2, 3]], [[0, 0, 0], [4, 5, 6]]) == pytest.approx(50 + 50 * (2 + 1e-6) / 19)
    assert schema_miou([[1, 2, 3]], [[1, 2, 3]]) == pytest.approx(100.0)
    for bad_pred in ([1, 2], [1, 2, -1]):  # length mismatch, a generated PAD
        with pytest.raises(ValueError, match="planning-miou"):
            schema_miou([bad_pred], [[1, 2, 3]])


# -- edit distances ----------------------------------------------------------------------------------------------


def test_levenshtein_and_damerau_by_hand():
    assert levenshtein("kitten", "sitting") == damerau_levenshtein("kitten", "sitting") == 3
    assert levenshtein("ab", "ba") == 2 and damerau_levenshtein("ab", "ba") == 1  # one adjacent transposition
    # optimal string alignment: no substring edited twice, so "ca" → "abc" costs 3 (unrestricted DL: 2)
    assert levenshtein("ca", "abc") == 3 and damerau_levenshtein("ca", "abc") == 3
    # 1234 → 2143: insert 2, substitute the old 2 by 4, delete the last 4 (3); or two transpositions (2)
    assert levenshtein([1, 2, 3, 4], [2, 1, 4, 3]) == 3 and damerau_levenshtein([1, 2, 3, 4], [2, 1, 4, 3]) == 2
    assert levenshtein([], [1, 2]) == damerau_levenshtein([1, 2], []) == 2
    assert levenshtein([], []) == 0


def _fewest_edits(a: tuple, b: tuple, alphabet=(0, 1, 2), transpose=False) -> int:
    """Breadth-first search over single edits (an independent definition of the distance, for short sequences)."""
    frontier, seen, steps = {a}, {a}, 0
    while b not in frontier:
        nxt = set()
        for s in frontier:
            for i in range(len(s) + 1):
                nxt.update((*s[:i], x, *s[i:]) for x in alphabet)
                if i < len(s):
                    nxt.add(s[:i] + s[i + 1 :])
                    nxt.update((*s[:i], x, *s[i + 1:]) for x in alphabet)
                if transpose and i + 1 < len(s):
                    nxt.add((*s[:i], s[i + 1], s[i], *s[i + 2:]))
        frontier, steps = nxt - seen, steps + 1
        seen |= frontier
    return steps


def test_distances_against_breadth_first_search():
    rng = random.Random(0)
    for _ in range(40):
        a = tuple(rng.randrange(3) for _ in range(rng.randrange(5)))
        b = tuple(rng.randrange(3) for _ in range(rng.randrange(5)))
        assert levenshtein(a, b) == _fewest_edits(a, b)
        # OSA lies between unrestricted Damerau–Levenshtein (BFS with swaps) and Levenshtein
        assert _fewest_edits(a, b, transpose=True) <= damerau_levenshtein(a, b) <= levenshtein(a, b)


def test_ed_min_over_candidates_by_hand():
    refs = [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    preds = [
        [[0, 1, 2, 3, 4]],  # K = 1, exact → 0
        [[1, 0, 2, 3, 4], [5, 5, 5, 5, 5]],  # K = 2: a swap (Levenshtein 2, Damerau 1) and all wrong (5)
    ]
    assert edit_distance_at(preds, refs, z=5) == pytest.approx((0 + 2 / 5) / 2)
    assert edit_distance_at(preds, refs, z=5, distance="damerau") == pytest.approx((0 + 1 / 5) / 2)


def test_ed_edge_cases():
    ref = [[0, 1, 2, 3, 4]]
    assert edit_distance_at([[0, 1, 2]], ref, z=5) == pytest.approx(2 / 5)  # one plain sequence (K = 1), short
    assert edit_distance_at([[]], ref, z=5) == 1.0  # empty hypothesis: z insertions
    assert edit_distance_at([[[]]], ref, z=5) == 1.0  # one empty candidate
    assert edit_distance_at([[9, 9, 9, 9, 9]], ref, z=5) == 1.0  # all wrong
    assert edit_distance_at([[0, 1, 2, 3, 4, 7, 7]], ref, z=5) == 0.0  # all correct; tokens after z are cut
    assert math.isnan(edit_distance_at([], [], z=5))
    with pytest.raises(ValueError, match="at least 20"):
        edit_distance_at([[0]], ref)  # default z = 20 needs 20 reference tokens
    with pytest.raises(ValueError, match="distance"):
        edit_distance_at([[0]], ref, z=1, distance="hamming")
    with pytest.raises(ValueError, match="mixes"):
        edit_distance_at([[[0], 1]], ref, z=1)


def test_ed_at_5_is_the_prefix_of_the_same_candidates():
    ref = [list(range(10))]
    good_prefix = [0, 1, 2, 3, 4, 9, 9, 9, 9, 9]  # 5 substitutions in the tail
    good_tail = [9, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # 1 substitution at the start
    preds = [[good_prefix, good_tail]]
    assert edit_distance_at(preds, ref, z=10) == pytest.approx(1 / 10)  # good_tail wins at z = 10
    assert edit_distance_at(preds, ref, z=5) == 0.0  # min re-taken: good_prefix wins at z = 5 (good_tail: 1/5)


def test_ed_parts_of_an_interleaved_serialisation():
    ref = [[10, 20, 11, 21]]  # [v0, n0, v1, n1]
    pred = [[[10, 25, 11, 21]]]  # n0 wrong
    assert edit_distance_at(pred, ref, z=2, part="even") == 0.0  # verbs
    assert edit_distance_at(pred, ref, z=2, part="odd") == pytest.approx(1 / 2)  # nouns
    assert edit_distance_at(pred, ref, z=4) == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="part"):
        edit_distance_at(pred, ref, z=2, part="left")


def test_candidates_shapes():
    assert candidates([1, 2]) == [[1, 2]]
    assert candidates([[1, 2], (3,)]) == [[1, 2], [3]]
    assert candidates([]) == [[]]


def test_procedural_metrics_registered():
    registry = Registry()  # only these plugins: loading every plugin imports torch and more
    for module in (planning_module, anticipation_module):
        module.benchkit_register(registry=registry)
    metrics = registry.entries["metric"]
    for name in ("top1", "planning-sr", "planning-macc", "planning-miou", "planning-miou-schema"):
        assert metrics[name].meta["higher_is_better"] is True and metrics[name].meta["unit"] == "%"
    assert metrics["ed"].meta["higher_is_better"] is False
    resolved = registry.resolve("metric", "ed@5-noun", {})
    assert resolved.entry.name == "ed" and resolved.kwargs == {"z": 5, "part": "odd"}
    assert registry.resolve("metric", "ed", {"z": 5, "distance": "damerau"}).kwargs["distance"] == "damerau"
