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


def repeated_group_split(
    groups: Sequence[str], repeats: int, test_fraction: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` independent random (train, test) splits at the group level; each puts whole groups in test, in a
    seeded random order, until ``test_fraction`` of the samples is reached (the closer of stopping before or after
    the group that crosses it). Split ``r`` depends only on ``seed`` and ``r``."""
    groups = np.asarray(groups, dtype=object)
    unique, inverse, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(unique) < 2:
        raise DataError(f"{len(unique)} group cannot make a train/test split (no group may be split)")
    target = test_fraction * len(groups)
    everything = np.arange(len(groups))
    out = []
    for r in range(repeats):
        order = np.random.default_rng([seed, r]).permutation(len(unique))
        cum = np.cumsum(counts[order])
        n = int(np.searchsorted(cum, target))  # groups order[:n+1] reach the target
        if n > 0 and abs(cum[n - 1] - target) <= abs(cum[min(n, len(cum) - 1)] - target):
            n -= 1
        n = min(max(n, 0), len(unique) - 2)  # at least one group in test and one in train
        test_groups = np.zeros(len(unique), dtype=bool)
        test_groups[order[: n + 1]] = True
        in_test = test_groups[inverse]
        out.append((everything[~in_test], everything[in_test]))
    return out


def make_splits(groups: Sequence[str], protocol) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) pairs of a grid's ``protocol`` (``benchkit.grid.config.ProtocolConfig``)."""
    if protocol.kind == "group_kfold":
        return group_kfold(groups, protocol.folds, protocol.seed)
    if protocol.kind == "fixed_split":
        return [fixed_split(groups, protocol.train_label, protocol.test_label)]
    return repeated_group_split(groups, protocol.repeats, protocol.test_fraction, protocol.seed)


def fixed_split(labels: Sequence[str], train_label: str = "train", test_label: str = "test") -> tuple:
    """The official split: samples labelled ``train_label`` train, ``test_label`` test, others are unused."""
    labels = np.asarray(labels, dtype=object).astype(str)
    train, test = np.flatnonzero(labels == train_label), np.flatnonzero(labels == test_label)
    if not len(train) or not len(test):
        found = ", ".join(sorted(set(labels.tolist()))[:5])
        raise DataError(
            f"fixed_split needs samples labelled {train_label!r} and {test_label!r} by the split key; found: {found}"
        )
    return train, test


def subsample_train(
    train: np.ndarray, fraction: float | None, split: int, protocol, n_samples: int
) -> np.ndarray:
    """The training part of split ``split`` reduced to ``fraction`` (of the training part, or of all ``n_samples``
    when ``protocol.train_fraction_of == "dataset"``); the test part is untouched. Subsets are nested: a smaller
    fraction keeps a prefix of the same seeded permutation, so 10% is inside 20%, inside 50%."""
    if fraction is None or (fraction >= 1 and protocol.train_fraction_of == "train"):
        return train
    base = len(train) if protocol.train_fraction_of == "train" else n_samples
    keep = round(fraction * base)
    if keep > len(train):
        raise DataError(
            f"train_fraction {fraction:g} of the dataset is {keep} samples, more than the {len(train)} in the "
            f"training part of split {split}; use values up to {len(train) / n_samples:.3f} or train_fraction_of: train"
        )
    if keep < 1:
        raise DataError(f"train_fraction {fraction:g} leaves no training sample in split {split}")
    order = np.random.default_rng([protocol.seed, split, 7919]).permutation(len(train))
    return np.sort(train[order[:keep]])
