"""Confusion matrices for the per-class figures (spec invpatch.md §5; BIMACS hands, §2)."""

from __future__ import annotations

import numpy as np
import pytest
from benchkit_metrics.accuracy import token_accuracy
from benchkit_metrics.precision import weighted_precision

from benchkit.report.confusion import confusion_matrix


def test_confusion_matrix_by_hand_with_the_padding_class():
    # sample 1: hyp [a, b, PAD] vs ref [a, a, c]; sample 2: hyp [c, c, b] vs ref [c, c, PAD]
    matrix, names = confusion_matrix([[0, 1], [2, 2, 1]], [[0, 0, 2], [2, 2]], ["a", "b", "c"])
    assert names == ["a", "b", "c", "<pad>"]
    expected = [
        [1, 1, 0, 0],  # a: right once, read as b once
        [0, 0, 0, 0],
        [0, 0, 2, 1],  # c: right twice, missing once (predicted PAD)
        [0, 1, 0, 0],  # an extra b after the reference ended
    ]
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype.kind == "i"
    # the diagonal is the accuracy's numerator over the same pooled positions
    acc = token_accuracy([[0, 1], [2, 2, 1]], [[0, 0, 2], [2, 2]])
    assert 100 * np.trace(matrix) / matrix.sum() == pytest.approx(acc)


def test_confusion_matrix_per_hand():
    # BIMACS serialisation [L0, R0, L1, R1]: left hand right then wrong, right hand always right
    preds, refs = [[0, 1, 1, 1]], [[0, 1, 0, 1]]
    left, _ = confusion_matrix(preds, refs, ["idle", "hold"], part="even")
    right, _ = confusion_matrix(preds, refs, ["idle", "hold"], part="odd")
    np.testing.assert_array_equal(left, [[1, 1, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(right, [[0, 0, 0], [0, 2, 0], [0, 0, 0]])
    both, _ = confusion_matrix(preds, refs, ["idle", "hold"])
    np.testing.assert_array_equal(both, left + right)


def test_generated_special_tokens_get_their_own_column():
    # a generated BOS (class -2) and the delimiter of a 2-action vocabulary (token 4 → class -5)
    matrix, names = confusion_matrix([[-2, -5]], [[0, 1]], ["idle", "hold"])
    assert names == ["idle", "hold", "<pad>", "<bos>", "<sep>"]
    assert matrix[0, 3] == 1 and matrix[1, 4] == 1 and matrix.sum() == 2
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([[2]], [[0]], ["idle", "hold"])


def test_empty_input_gives_an_empty_square_matrix():
    matrix, names = confusion_matrix([], [], ["a", "b"])
    assert matrix.shape == (3, 3) and matrix.sum() == 0 and names == ["a", "b", "<pad>"]


def test_weighted_precision_from_the_matrix_matches_the_metric():
    # sklearn's definition on the confusion matrix: precision_c = M[c, c] / column c, weight = row c / total
    rng = np.random.default_rng(0)
    refs = [rng.integers(0, 4, rng.integers(1, 6)).tolist() for _ in range(50)]
    preds = [rng.integers(0, 4, rng.integers(0, 6)).tolist() for _ in range(50)]
    m, _ = confusion_matrix(preds, refs, ["a", "b", "c", "d"])
    cols, rows = m.sum(axis=0), m.sum(axis=1)
    per_class = np.divide(np.diag(m), cols, out=np.zeros(len(m)), where=cols > 0)
    assert weighted_precision(preds, refs) == pytest.approx(100 * float(per_class @ rows) / m.sum())
