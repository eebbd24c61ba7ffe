from __future__ import annotations

import numpy as np
import pytest

from benchkit.errors import DataError
from benchkit.run.splits import group_kfold


def test_group_kfold_partitions_without_splitting_groups():
    groups = [f"v{i // 3}" for i in range(30)] + [f"w{i}" for i in range(7)]
    folds = group_kfold(groups, 5, seed=1)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(len(groups)))  # each sample tested exactly once
    for train, test in folds:
        assert not set(train) & set(test)
        assert not {groups[i] for i in train} & {groups[i] for i in test}
    sizes = [len(te) for _, te in folds]
    assert max(sizes) - min(sizes) <= 3  # balanced up to one group


def test_group_kfold_is_deterministic_and_seeded():
    groups = [f"g{i % 11}" for i in range(44)]
    a = [te.tolist() for _, te in group_kfold(groups, 3, seed=0)]
    assert a == [te.tolist() for _, te in group_kfold(groups, 3, seed=0)]
    assert a != [te.tolist() for _, te in group_kfold(groups, 3, seed=5)]


def test_too_few_groups():
    with pytest.raises(DataError, match="2 groups cannot make 3 folds"):
        group_kfold(["a", "a", "b"], 3, seed=0)
