"""Per-class confusion matrices from stored predictions (the figures of spec invpatch.md §5's analysis).

Tokens are pooled exactly as for ``accuracy`` and ``precision``: per sample the shorter of hypothesis and reference
is right-padded with the padding class (``pad_pair``), so a missing or extra token lands in the PAD row or column.
Rows are reference classes, columns predicted classes (sklearn's convention); the classes are the actions in
vocabulary order, then PAD, then any other generated special token that occurs (``<bos>``, ``<sep>``).

``part`` picks one stream of an interleaved serialisation before padding: BIMACS writes per frame
``[left, right]`` (L0, R0, L1, R1, ...), so ``part="even"`` is the left hand and ``part="odd"`` the right hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchkit.sequence.padding import pad_pair, select_part
from benchkit.sequence.vocabulary import PAD_CLASS, Vocabulary


def confusion_matrix(
    predictions: Sequence[Sequence[int]],
    references: Sequence[Sequence[int]],
    labels: Sequence[str],
    part: str = "all",
) -> tuple[np.ndarray, list[str]]:
    """``(matrix, names)``: ``matrix[i, j]`` counts pooled positions with reference class i predicted as class j.

    ``labels`` are the action names (index = action id). The classes are the actions, PAD (always present, so the
    shape is stable), then the other negative classes found, in the order -2, -3, ..., named as the runner names
    them for metrics (``Vocabulary.class_name``: ``<pad>``, ``<bos>``, ``<sep>``).
    """
    pairs: list[tuple[int, int]] = []
    for hyp, ref in zip(predictions, references, strict=True):
        h, r = pad_pair(select_part(hyp, part), select_part(ref, part))
        pairs.extend(zip(r, h, strict=True))
    found = {c for pair in pairs for c in pair}
    if found and max(found) >= len(labels):
        raise ValueError(f"class {max(found)} is outside the {len(labels)} actions")
    classes = [*range(len(labels)), PAD_CLASS, *sorted((c for c in found if c < PAD_CLASS), reverse=True)]
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for r, h in pairs:
        matrix[index[r], index[h]] += 1
    # a delimiter is assumed so that a generated one is named; without one its id is EOS, which decoding never keeps
    vocabulary = Vocabulary(tuple(labels), delimiter=True)
    return matrix, [vocabulary.class_name(c) for c in classes]
