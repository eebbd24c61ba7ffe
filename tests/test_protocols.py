"""Split protocols and sensitivity sweeps: repeated group splits, training-fraction and frame-count sweeps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchkit.errors import DataError
from benchkit.grid.config import ProtocolConfig, expand, parse_grid
from benchkit.grid.plan import plan
from benchkit.run.runner import run_grid
from benchkit.run.splits import make_splits, repeated_group_split, subsample_train


def test_repeated_group_split_hits_the_fraction_and_keeps_groups_whole():
    groups = [f"v{i // 4}" for i in range(200)]  # 50 groups of 4
    splits = repeated_group_split(groups, repeats=3, test_fraction=0.2, seed=0)
    assert len(splits) == 3
    for train, test in splits:
        assert len(test) == 40 and len(train) == 160  # 10 whole groups of 4 = exactly 20%
        assert not {groups[i] for i in train} & {groups[i] for i in test}
        assert sorted([*train, *test]) == list(range(200))
    assert not np.array_equal(splits[0][1], splits[1][1])  # the repeats differ
    again = repeated_group_split(groups, repeats=2, test_fraction=0.2, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(again, splits, strict=False))  # split r depends on r only


def test_repeated_split_keeps_a_group_on_each_side():
    train, test = repeated_group_split(["a", "a", "b"], repeats=1, test_fraction=0.9, seed=1)[0]
    assert len(train) and len(test)
    with pytest.raises(DataError, match="1 group cannot"):
        repeated_group_split(["a", "a"], 1, 0.2, 0)


def test_make_splits_follows_the_protocol():
    groups = [f"g{i}" for i in range(10)]
    assert len(make_splits(groups, ProtocolConfig(kind="group_kfold", folds=5))) == 5
    assert len(make_splits(groups, ProtocolConfig(kind="repeated_split", repeats=3))) == 3


def test_train_fraction_subsets_are_nested_and_test_is_untouched():
    train = np.arange(100, 200)
    p = ProtocolConfig()
    halves = subsample_train(train, 0.5, 0, p, 250)
    tenth = subsample_train(train, 0.1, 0, p, 250)
    assert len(halves) == 50 and len(tenth) == 10 and set(tenth) <= set(halves) <= set(train)
    assert subsample_train(train, 1.0, 0, p, 250) is train
    of_data = ProtocolConfig(train_fraction_of="dataset")
    assert len(subsample_train(train, 0.2, 0, of_data, 250)) == 50  # 20% of 250 samples
    with pytest.raises(DataError, match="more than the 100"):
        subsample_train(train, 0.8, 0, of_data, 250)


def test_sweeps_expand_into_cells_with_labels(tiny_grid, registry):
    tiny_grid["level"] = "patch"
    tiny_grid["sweep"] = {"train_fraction": [1.0, 0.5], "frames": [4, 6]}
    tiny_grid["exclude"] = [{"train_fraction": 0.5, "frames": 4}]
    grid = parse_grid(tiny_grid)
    cells = expand(grid)
    assert [(c.train_fraction, c.frames) for c in cells] == [(1.0, 4), (1.0, 6), (0.5, 6)]
    assert cells[0].labels()["train_fraction"] == 1.0 and cells[0].labels()["frames"] == 4
    planned = plan(grid, registry)
    assert planned[0].dataset.kwargs["frames"] == 4 and planned[1].dataset.kwargs["frames"] == 6
    assert len({p.id for p in planned}) == 3 and planned[0].dataset_key != planned[1].dataset_key


def test_frames_sweep_needs_a_dataset_that_takes_frames(tiny_grid, registry):
    tiny_grid["sweep"] = {"frames": [4]}
    tiny_grid["dataset"] = "synthetic-small"
    planned = plan(parse_grid(tiny_grid), registry)
    assert planned[0].dataset.kwargs["frames"] == 4  # the sweep overrides the preset's 8


def test_train_fraction_sweep_runs_on_repeated_splits(tmp_path, tiny_grid, registry):
    tiny_grid.update(level="patch", sweep={"train_fraction": [1.0, 0.25]}, baselines=["majority"])
    tiny_grid["protocol"] = {"kind": "repeated_split", "repeats": 2, "test_fraction": 0.25, "seed": 3}
    summary = run_grid(parse_grid(tiny_grid), tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert summary.folds_total == 4 and not summary.failed
    plan_json = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan_json["folds"] == 2 and plan_json["sweep"] == ["train_fraction"]
    n_train = {}
    for cell in plan_json["cells"]:
        for k in range(2):
            record = json.loads((tmp_path / "run" / "cells" / cell["id"] / f"fold-{k}.json").read_text())
            n_train[(cell["labels"]["train_fraction"], k)] = (record["n_train"], record["n_test"])
    for k in range(2):
        full, quarter = n_train[(1.0, k)], n_train[(0.25, k)]
        assert quarter[1] == full[1]  # test part fixed
        assert quarter[0] == round(0.25 * full[0])


def test_profile_section_profiles_each_cell_once(tmp_path, tiny_grid, registry):
    tiny_grid.update(level="patch", baselines=[], profile={"latency": False, "memory": False, "training": False})
    grid = parse_grid(tiny_grid)
    summary = run_grid(grid, tmp_path / "run", registry, say=lambda m: None, progress=False)
    (cell,) = json.loads((tmp_path / "run" / "plan.json").read_text())["cells"]
    path = tmp_path / "run" / "cells" / cell["id"] / "profile.json"
    profile = json.loads(path.read_text())
    assert profile["summary"]["gflops"] > 0 and profile["summary"]["trainable_params_M"] > 0
    assert profile["options"]["latency"] is False
    stamp = path.stat().st_mtime_ns
    run_grid(grid, tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert path.stat().st_mtime_ns == stamp and summary.folds_run == 2  # not profiled again


def test_bad_profile_option_is_one_line(tiny_grid, registry):
    from benchkit.errors import ConfigError

    tiny_grid["profile"] = {"batchsize": 3}
    with pytest.raises(ConfigError, match=r"^grid: profile\.batchsize: unknown key$"):  # the schema's check
        parse_grid(tiny_grid)


def test_fixed_split_uses_the_official_labels():
    from benchkit.run.splits import fixed_split

    train, test = fixed_split(["train", "test", "train", "val", "test"])
    assert train.tolist() == [0, 2] and test.tolist() == [1, 4]
    with pytest.raises(DataError, match="found: a, b"):
        fixed_split(["a", "b"])
    assert ProtocolConfig(kind="fixed_split").splits == 1
