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
    return [group_holdout(groups, test_fraction, np.random.default_rng([seed, r]), "a train/test split")
            for r in range(repeats)]


def group_holdout(
    groups: Sequence[str], fraction: float, rng: np.random.Generator, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """One (kept, held out) pair of positions: whole groups in ``rng``'s order are held out until ``fraction`` of
    the samples is reached (the closer of stopping before or after the group that crosses it); at least one group
    on each side."""
    groups = np.asarray(groups, dtype=object)
    unique, inverse, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(unique) < 2:
        raise DataError(f"{len(unique)} group cannot make {what} (no group may be split)")
    target = fraction * len(groups)
    order = rng.permutation(len(unique))
    cum = np.cumsum(counts[order])
    n = int(np.searchsorted(cum, target))  # groups order[:n+1] reach the target
    if n > 0 and abs(cum[n - 1] - target) <= abs(cum[min(n, len(cum) - 1)] - target):
        n -= 1
    n = min(max(n, 0), len(unique) - 2)  # at least one group held out and one kept
    held = np.zeros(len(unique), dtype=bool)
    held[order[: n + 1]] = True
    held_out = held[inverse]
    everything = np.arange(len(groups))
    return everything[~held_out], everything[held_out]


def validation_split(
    train: np.ndarray, groups: Sequence[str], fraction: float, split: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The inner (train, validation) indices of split ``split``'s training part ``train`` for hyper-parameter
    selection: whole groups of ``groups`` (over all samples) held out, ``fraction`` of the training samples. The
    draw depends only on ``seed`` and ``split``, so every cell of a split validates on the same samples, and never
    on the split's test part."""
    sub = np.asarray(groups, dtype=object)[train]
    keep, held = group_holdout(sub, fraction, np.random.default_rng([seed, split, 104729]),
                               f"a validation split inside the training part of split {split}")
    return train[keep], train[held]


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
