"""The simple baselines of the papers' tables, computed on the same folds as the cells (spec invpatch.md §3).

- ``random``: each position an action drawn uniformly.
- ``majority``: the most frequent training action repeated.
Both predict sequences of the most common training length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

BASELINE_LABELS = {"random": "Random", "majority": "Majority"}


def baseline_predictions(
    name: str, train_refs: Sequence[Sequence[int]], n_test: int, n_actions: int, seed: int
) -> list[list[int]]:
    length = Counter(len(r) for r in train_refs).most_common(1)[0][0]
    if name == "majority":
        counts = Counter(a for r in train_refs for a in r)
        top = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0]
        return [[top] * length for _ in range(n_test)]
    if name == "random":
        rng = np.random.default_rng(seed)
        return rng.integers(0, n_actions, size=(n_test, length)).tolist()
    raise ValueError(f"unknown baseline {name!r}")
