"""Cross-validation splits that never put one group (video, take, episode) in two folds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchkit.errors import DataError


def group_kfold(groups: Sequence[str], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folds`` (train, test) index pairs; groups are shuffled by ``seed`` and assigned largest-first to the
    fold with the fewest samples, so folds are balanced in samples and no group is split."""
    groups = np.asarray(groups, dtype=object)
    unique, inverse, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(unique) < folds:
        raise DataError(f"{len(unique)} groups cannot make {folds} folds (no group may be split)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    load = np.zeros(folds, dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += counts[g]
    fold_of_sample = fold_of_group[inverse]
    everything = np.arange(len(groups))
    return [(everything[fold_of_sample != f], everything[fold_of_sample == f]) for f in range(folds)]
