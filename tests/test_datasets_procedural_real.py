"""The real procedural loaders on tiny fixtures in each public format: COIN JSON, CrossTask CSV, NIV JSON, Ego4D LTA
JSON; per-video features as .npy, .npz (also zipped under .npy, as the S3D release) and .safetensors; the task
windows (T = 3, 4), the observed-feature pooling, and one-line errors for missing or malformed files.

Where each fixture's structure comes from (GitHub ``WenliangGuo/SCHEMA`` ships copies of the public annotation files;
the fixtures copy their shape, not their content):

- COIN: ``dataset/coin/COIN.json`` (``{"database": {vid: {...}}}``) and ``coin_train.json`` / ``coin_valid.json``
  (``[{vid: {"recipe_type", "annotation": [{"id": "<1-based>", "segment": [s, e], "label"}], "video_url", "start",
  "end", "duration", "class", "subset"}}]``); ``dataset/coin/taxonomy.xlsx`` (sheet ``target_action_mapping``:
  target ids 0..179 with CamelCase names without underscores, action ids 1..778). Feature names: the S3D release
  (``COIN_s3d.zip``) names a file ``<class>_<recipe_type>_<vid>.npy`` (GitHub ``MCG-NJU/PDPP``
  ``dataloader/data_load_mlp.py`` builds that path; SCHEMA's ``tools/rename_coin_feat.py`` strips the prefixes);
  YouTube ids contain ``_`` and ``-``.
- CrossTask: ``dataset/crosstask/crosstask_release/`` (``tasks_primary.txt`` blocks; header-less
  ``annotations/<task>_<vid>.csv`` rows ``step,start,end`` whose steps may overlap and repeat; ``videos.csv`` rows
  ``task,vid,url`` that also list related, non-primary tasks), the P3IV lists ``cross_task_data_{True,False}.json``
  (``[{"id": {"vid", "task", "feature", "bbox"}, "instruction_len"}]``), PDPP's ``pdpp_{train,test}_list.json``
  (``[{"vid", "task", "length"}]``) and ``data/crosstask_idices.json`` (``{"action_idx": {"<task>_<step>": id}}``).
- NIV: ``dataset/niv/niv_{train,valid}.json`` (``{"<task>_<nnnn>": {"task", "task_id", "steps": [{"action",
  "action_id", "start", "end"}]}}``; 0-based action ids, steps that abut or repeat).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from benchkit_datasets._coin import coin
from benchkit_datasets._crosstask import crosstask
from benchkit_datasets._ego4d_lta import ego4d_lta
from benchkit_datasets._niv import niv
from benchkit_datasets._procedural_features import pool_span, state_feature
from safetensors.numpy import save_file

from benchkit.errors import DataError

E = 3


def ramp(n: int, base: float = 0.0) -> np.ndarray:
    """Feature ``i`` = ``base + i`` in every dimension, so every mean is easy to compute by hand."""
    return (base + np.arange(n, dtype=np.float32))[:, None].repeat(E, axis=1)


def write_features(folder, stem: str, array: np.ndarray, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        np.save(folder / f"{stem}.npy", array)
    elif fmt == "npz":
        np.savez(folder / f"{stem}.npz", frames_features=array, other=np.zeros(2))
    elif fmt == "zip-as-npy":  # the CrossTask / COIN / NIV S3D release: an npz archive named .npy
        with open(folder / f"{stem}.npy", "wb") as f:
            np.savez(f, frames_features=array)
    else:
        save_file({"features": array}, str(folder / f"{stem}.safetensors"))


def coin_entry(task, name, subset, steps):
    return {"recipe_type": task, "annotation": [{"id": str(i), "segment": [s, e], "label": f"step {i} of {name}"}
                                                for i, s, e in steps],
            "video_url": "https://www.youtube.com/embed/x", "start": 0.5, "end": 59.5, "duration": 60.0,
            "class": name, "subset": subset}


@pytest.fixture
def coin_root(tmp_path):
    database = {
        "vidA": coin_entry(0, "MakeTea", "training", [(1, 2.0, 5.0), (2, 6.0, 9.5), (3, 11.0, 14.0), (1, 15.0, 18.0)]),
        "vidB": coin_entry(1, "FixBike", "testing", [(4, 0.0, 3.0), (5, 4.0, 8.0), (6, 9.0, 20.0)]),
        "vidC": coin_entry(0, "MakeTea", "training", [(1, 1.0, 2.0), (3, 3.0, 4.0)]),
        "vidD": coin_entry(1, "FixBike", "training", [(4, 1.0, 2.0), (5, 3.0, 4.0), (6, 5.0, 6.0)]),  # no features
    }
    (tmp_path / "COIN.json").write_text(json.dumps({"database": database}))
    write_features(tmp_path / "features", "vidA", ramp(20), "npy")
    write_features(tmp_path / "features", "vidB", ramp(20, 100.0), "zip-as-npy")
    write_features(tmp_path / "features", "vidC", ramp(6, 200.0), "safetensors")
    return tmp_path


# -- pooling rules -----------------------------------------------------------------------------------------------


def test_pool_span_and_state_feature_by_hand():
    s = ramp(10)
    np.testing.assert_allclose(pool_span(s, 6.0, 10.0, 2)[:, 0], [6.5, 8.5])  # [6, 8) and [8, 10)
    np.testing.assert_allclose(pool_span(s, 6.0, 8.0, 2)[:, 0], [6.0, 7.0])
    np.testing.assert_allclose(pool_span(s, 2.5, 4.0, 1)[:, 0], [2.5])  # bins 2 and 3 overlap [2.5, 4)
    np.testing.assert_allclose(pool_span(s, 3.0, 3.0, 2)[:, 0], [3.0, 3.0])  # empty: the step holding the start
    np.testing.assert_allclose(pool_span(s, 8.0, 14.0, 2)[:, 0], [8.5, 9.0])  # clamped to the video
    np.testing.assert_allclose(state_feature(s, 4, 1)[0], 4.0)  # mean of 3, 4, 5
    np.testing.assert_allclose(state_feature(s, 0, 1)[0], 0.5)  # clamped: 0, 1
    np.testing.assert_allclose(state_feature(s, 9, 1)[0], 8.5)  # clamped: 8, 9


# -- COIN --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("horizon", "windows"), [(3, {"vidA": [[0, 1, 2], [1, 2, 0]], "vidB": []}),
                                                  (4, {"vidA": [[0, 1, 2, 0]], "vidB": []})])
def test_coin_planning_windows_and_states(coin_root, horizon, windows):
    """vidB's last step ends at 20 s = its feature length: SCHEMA drops every window holding it."""
    ds = coin(str(coin_root), task="planning", horizon=horizon)
    got = {}
    for i in range(len(ds)):
        got.setdefault(ds.groups("clip")[i], []).append(ds.targets(i))
    assert got == {k: v for k, v in windows.items() if v}
    x = ds.video(0)
    assert x.shape == (2, 1, E) and x.dtype == np.float32
    # start of step 1 at 2 s: mean of features 1, 2, 3; end of step T: 14 s (T=3) -> 13..15, 18 s (T=4) -> 17..19
    np.testing.assert_allclose(x[:, 0, 0], [2.0, 14.0 if horizon == 3 else 18.0])
    assert ds.vocabulary.actions[:3] == ("step 1 of MakeTea", "step 2 of MakeTea", "step 3 of MakeTea")
    assert ds.transition_smoothing == 1.0 and ds.kind == "features"


def test_coin_planning_end_state_floors_fractional_seconds(coin_root):
    ds = coin(str(coin_root), task="planning", horizon=2)
    vid_a = [i for i, g in enumerate(ds.groups("clip")) if g == "vidA"]
    assert ds.targets(vid_a[0]) == [0, 1]
    np.testing.assert_allclose(ds.video(vid_a[0])[:, 0, 0], [2.0, 9.0])  # step 2 ends at 9.5 s -> second 9


def test_coin_forecasting_windows(coin_root):
    ds = coin(str(coin_root), task="forecasting", history=4.0, clips=2, tokens=2)
    assert [ds.targets(i) for i in range(len(ds))] == [[1], [2], [0], [4], [5], [2]]
    assert ds.groups() == ["vidA"] * 3 + ["vidB"] * 2 + ["vidC"]
    # vidA step 2 starts at 6 s: observed [2, 6) -> clips [2, 4), [4, 6) -> tokens 2, 3 and 4, 5
    np.testing.assert_allclose(ds.video(0)[..., 0], [[2.0, 3.0], [4.0, 5.0]])
    # vidC step 2 starts at 3 s: observed [0, 3) (history is cut at 0) -> [0, 1.5) = 0 and 1, [1.5, 3) = 1 and 2
    np.testing.assert_allclose(ds.video(5)[..., 0], [[200.0, 200.5], [201.5, 202.0]])


def test_coin_classification_and_official_split(coin_root):
    ds = coin(str(coin_root), task="classification", clips=2)
    assert ds.vocabulary.actions == ("MakeTea", "FixBike")
    assert [ds.targets(i) for i in range(len(ds))] == [[0], [1], [0]]
    assert ds.groups("split") == ["train", "test", "train"]
    np.testing.assert_allclose(ds.video(0)[:, 0, 0], [5.5, 13.5])  # [2, 18) as [2, 10), [10, 18)
    train = coin(str(coin_root), task="classification", subset="train")
    assert train.groups() == ["vidA", "vidC"]
    assert train.fingerprint() != ds.fingerprint()


def test_coin_schema_list_format_matches_official(coin_root, tmp_path):
    database = json.loads((coin_root / "COIN.json").read_text())["database"]
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "coin_train.json").write_text(json.dumps([{k: v} for k, v in database.items() if k != "vidB"]))
    (lists / "coin_valid.json").write_text(json.dumps([{"vidB": database["vidB"]}]))
    official = coin(str(coin_root), task="planning", horizon=2)
    schema = coin(str(coin_root), task="planning", horizon=2,
                  annotations=[str(lists / "coin_train.json"), str(lists / "coin_valid.json")])
    assert sorted(map(tuple, (official.targets(i) for i in range(len(official))))) == sorted(
        map(tuple, (schema.targets(i) for i in range(len(schema)))))


def test_coin_step_sequences_for_viterbi(coin_root):
    ds = coin(str(coin_root), task="planning", horizon=2)
    assert ds.step_sequences() == [[0, 1, 2, 0], [3, 4, 5], [0, 2]]
    assert ds.step_sequences([0]) == [[0, 1, 2, 0]]


def test_coin_reads_the_s3d_release_names(tmp_path):
    """The feature release as downloaded: ``<class>_<recipe_type>_<vid>.npy``, zip archives with
    ``frames_features``; class names and ids from COIN's taxonomy, ids with ``_`` and ``-``. Renamed files
    (``<vid>.npy``, SCHEMA's layout) are read beside them."""
    database = {
        "a_B-3cD4eF5": coin_entry(0, "UseAnalyticalBalance", "training", [(65, 1, 3), (66, 4, 6), (67, 7, 9)]),
        "-Gh_6iJ7kL8": coin_entry(179, "WrapGiftBox", "testing", [(32, 0.0, 2.0), (33, 3.0, 5.0), (32, 6.0, 8.0)]),
        "mN9oP0qR1sT": coin_entry(179, "WrapGiftBox", "training", [(33, 0.0, 2.0), (32, 3.0, 5.0), (33, 6.0, 8.0)]),
    }
    (tmp_path / "COIN.json").write_text(json.dumps({"database": database}))
    features = tmp_path / "features"
    write_features(features, "UseAnalyticalBalance_0_a_B-3cD4eF5", ramp(12), "zip-as-npy")
    write_features(features, "WrapGiftBox_179_-Gh_6iJ7kL8", ramp(12, 50.0), "zip-as-npy")
    write_features(features, "mN9oP0qR1sT", ramp(12, 100.0), "npy")  # renamed as SCHEMA's script does
    ds = coin(str(tmp_path), task="planning", horizon=3)
    assert ds.groups("clip") == ["a_B-3cD4eF5", "-Gh_6iJ7kL8", "mN9oP0qR1sT"]
    assert [ds.targets(i) for i in range(len(ds))] == [[64, 65, 66], [31, 32, 31], [32, 31, 32]]
    np.testing.assert_allclose(ds.video(1)[:, 0, 0], [50.5, 58.0])  # start 0 s -> features 0, 1; end 8 s -> 7..9
    assert len(ds.vocabulary.actions) == 67 and ds.vocabulary.actions[64] == "step 65 of UseAnalyticalBalance"


def test_coin_two_feature_files_for_one_video_are_an_error(coin_root):
    write_features(coin_root / "features", "MakeTea_0_vidA", ramp(20), "npy")
    with pytest.raises(DataError) as e:
        coin(str(coin_root))
    assert "MakeTea_0_vidA.npy and vidA.npy are both features of one video; keep one" in one_line(e)
    (coin_root / "features" / "MakeTea_0_vidA.npy").unlink()
    write_features(coin_root / "features", "vidA", ramp(20), "npz")  # vidA.npy and vidA.npz
    with pytest.raises(DataError) as e:
        coin(str(coin_root))
    assert "vidA.npy and vidA.npz are both features of one video" in one_line(e)


def test_coin_class_names_cannot_lead_outside_the_features_folder(coin_root):
    data = json.loads((coin_root / "COIN.json").read_text())
    data["database"]["vidA"]["class"] = "../../elsewhere"
    (coin_root / "COIN.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="leads outside") as e:
        coin(str(coin_root))
    assert "\n" not in str(e.value)


# -- CrossTask ---------------------------------------------------------------------------------------------------


@pytest.fixture
def crosstask_root(tmp_path):
    release = tmp_path / "crosstask_release"
    (release / "annotations").mkdir(parents=True)
    (release / "tasks_primary.txt").write_text(
        "111\nMake Tea\nhttp://a\n3\nboil water,add tea,pour\n\n222\nFix Bike\nhttp://b\n2\nremove wheel,patch\n\n"
    )
    (release / "annotations" / "111_vidA.csv").write_text("1,1.4,3.6\n2,4.5,6.2\n3,7.0,9.0\n1,10.0,11.0\n")
    (release / "annotations" / "222_vidB.csv").write_text("2,0.0,2.0\n1,3.0,4.0\n2,5.0,6.0\n")
    (release / "annotations" / "222_vidX.csv").write_text("1,0.0,2.0\n2,3.0,4.0\n1,5.0,6.0\n")  # in no split
    (release / "videos.csv").write_text("111,vidA,https://www.youtube.com/watch?v=vidA\n")
    (release / "videos_val.csv").write_text("222,vidB,https://www.youtube.com/watch?v=vidB\n")
    write_features(tmp_path / "features", "111_vidA", ramp(15), "npz")
    write_features(tmp_path / "features", "vidB", ramp(10, 50.0), "npy")
    return tmp_path


@pytest.mark.parametrize(("horizon", "targets"), [(3, [[0, 1, 2], [1, 2, 0], [4, 3, 4]]), (4, [[0, 1, 2, 0]])])
def test_crosstask_planning_global_classes_rounding_and_split(crosstask_root, horizon, targets):
    ds = crosstask(str(crosstask_root), task="planning", horizon=horizon)
    assert [ds.targets(i) for i in range(len(ds))] == targets
    assert len(ds.vocabulary.actions) == 5 and ds.vocabulary.actions[3] == "Fix Bike: remove wheel"
    assert ds.transition_smoothing == 0.0
    # step 1 of vidA: 1.4 s rounds to 1 -> features 0..2; the last step ends at 9.0 (T=3) or 11.0 (T=4)
    np.testing.assert_allclose(ds.video(0)[:, 0, 0], [1.0, 9.0 if horizon == 3 else 11.0])
    if horizon == 3:
        assert ds.groups("split") == ["train", "train", "test"] and ds.groups()[2] == "vidB"
        assert ds.groups("task") == ["0", "0", "1"]


def test_crosstask_p3iv_json_split_lists(crosstask_root, tmp_path):
    train, test = tmp_path / "train.json", tmp_path / "test.json"
    train.write_text(json.dumps([{"id": {"vid": "vidA", "task": "111", "feature": "x.npy"}, "instruction_len": 3}]))
    test.write_text(json.dumps([{"id": {"vid": "vidX", "task": "222"}}, {"id": {"vid": "vidB", "task": "222"}}]))
    ds = crosstask(str(crosstask_root), train_list=str(train), test_list=str(test))
    assert ds.groups("split") == ["train", "train", "test"]  # vidX has no features: skipped


def test_crosstask_pdpp_split_lists(crosstask_root, tmp_path):
    train, test = tmp_path / "pdpp_train_list.json", tmp_path / "pdpp_test_list.json"
    train.write_text(json.dumps([{"vid": "vidA", "task": "111", "length": 4}]))
    test.write_text(json.dumps([{"vid": "vidB", "task": "222", "length": 3}]))
    ds = crosstask(str(crosstask_root), train_list=str(train), test_list=str(test))
    assert ds.groups("split") == ["train", "train", "test"]
    test.write_text(json.dumps([{"video": "vidB"}]))
    with pytest.raises(DataError) as e:
        crosstask(str(crosstask_root), train_list=str(train), test_list=str(test))
    assert 'expected a list of {"id": {"vid": ...}} or of {"vid": ...}' in one_line(e)


def test_crosstask_schema_action_index(crosstask_root, tmp_path):
    """SCHEMA's ``crosstask_idices.json`` numbering (1-based), so that bitwise mIoU matches SCHEMA's."""
    index = tmp_path / "crosstask_idices.json"
    ids = {"Make Tea_boil water": 5, "Make Tea_add tea": 4, "Make Tea_pour": 3, "Fix Bike_remove wheel": 2,
           "Fix Bike_patch": 1}
    index.write_text(json.dumps({"action_idx": ids, "task_idx": {}}))
    ds = crosstask(str(crosstask_root), action_index=str(index))
    assert [ds.targets(i) for i in range(len(ds))] == [[4, 3, 2], [3, 2, 4], [0, 1, 0]]
    assert ds.vocabulary.actions == ("Fix Bike: patch", "Fix Bike: remove wheel", "Make Tea: pour", "Make Tea: add tea",
                                     "Make Tea: boil water")
    del ids["Fix Bike_patch"]
    index.write_text(json.dumps({"action_idx": ids}))
    with pytest.raises(DataError) as e:
        crosstask(str(crosstask_root), action_index=str(index))
    assert "crosstask_idices.json: malformed annotation (no id for 'Fix Bike_patch')" in one_line(e)


# -- NIV ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def niv_root(tmp_path):
    def video(task, name, steps):
        return {"task": name, "task_id": task, "steps": [
            {"action": f"a{a}", "action_id": a, "start": s, "end": e} for a, s, e in steps]}

    (tmp_path / "niv_train.json").write_text(json.dumps({
        "coffee_0001": video(1, "making coffee", [(11, 1.2, 3.9), (13, 4.0, 5.0), (17, 6.5, 8.0), (19, 9.0, 9.9)]),
    }))
    (tmp_path / "niv_valid.json").write_text(json.dumps({
        "cpr_0002": video(2, "cpr", [(21, 0.5, 1.0), (22, 2.0, 3.0), (24, 4.0, 6.0)]),
    }))
    write_features(tmp_path / "features", "coffee_0001", ramp(12), "safetensors")
    write_features(tmp_path / "features", "cpr_0002", ramp(8, 10.0), "npy")
    return tmp_path


@pytest.mark.parametrize(("horizon", "targets"), [(3, [[11, 13, 17], [13, 17, 19], [21, 22, 24]]),
                                                  (4, [[11, 13, 17, 19]])])
def test_niv_planning(niv_root, horizon, targets):
    ds = niv(str(niv_root), horizon=horizon)
    assert [ds.targets(i) for i in range(len(ds))] == targets
    assert len(ds.vocabulary.actions) == 25 and ds.vocabulary.actions[11] == "a11"
    np.testing.assert_allclose(ds.video(0)[:, 0, 0], [1.0, 8.0 if horizon == 3 else 9.0])  # 1.2 -> 1; 8.0 / 9.9
    if horizon == 3:
        np.testing.assert_allclose(ds.video(2)[:, 0, 0], [10.5, 16.0])  # 0.5 -> 0 (clamped: 0, 1); 6 -> 5..7
        assert ds.groups("split") == ["train", "train", "test"]


# -- Ego4D LTA ---------------------------------------------------------------------------------------------------


@pytest.fixture
def ego4d_root(tmp_path):
    def clips(clip, video, parent, actions):
        return [{"clip_uid": clip, "video_uid": video, "clip_parent_start_sec": parent, "action_idx": k,
                 "action_clip_start_sec": 2.0 * k, "action_clip_end_sec": 2.0 * k + 2.0,
                 "verb_label": v, "noun_label": n, "verb": f"verb{v}", "noun": f"noun{n}"} for k, v, n in actions]

    folder = tmp_path / "annotations"
    folder.mkdir()
    train = clips("c1", "v1", 100.0, [(k, k % 3, (k + 1) % 4) for k in range(7)])
    train.reverse()  # Ego4D's loader orders by action_idx, not by file order
    (folder / "fho_lta_train.json").write_text(json.dumps({"version": "v2", "split": "train", "clips": train}))
    (folder / "fho_lta_val.json").write_text(json.dumps({"clips": clips("c2", "v2", 0.0, [(k, 2, 3) for k in
                                                                                          range(5)])}))
    (folder / "fho_lta_taxonomy.json").write_text(json.dumps({"verbs": ["take", "put", "cut"],
                                                              "nouns": ["cup", "knife", "board", "pan", "lid"]}))
    write_features(tmp_path / "features", "c1", ramp(16), "npy")
    write_features(tmp_path / "features", "c2", ramp(12, 40.0), "npy")
    write_features(tmp_path / "video_features", "v1", ramp(130), "npy")
    write_features(tmp_path / "video_features", "v2", ramp(20, 40.0), "npy")
    return tmp_path


def test_ego4d_lta_windows_and_interleaved_targets(ego4d_root):
    ds = ego4d_lta(str(ego4d_root), observed=2, z=3)
    assert len(ds) == 3 + 1  # 7 actions: 3 windows of 2 + 3; 5 actions: 1
    assert ds.vocabulary.actions == ("take", "put", "cut", "cup", "knife", "board", "pan", "lid")
    # window 0 of c1: actions 2, 3, 4 follow -> verbs 2, 0, 1; nouns 3, 0, 1 (offset by 3 verbs)
    assert ds.targets(0) == [2, 3 + 3, 0, 3 + 0, 1, 3 + 1]
    assert ds.targets(3) == [2, 6, 2, 6, 2, 6]
    x = ds.video(1)  # actions 1 and 2 of c1: [2, 4) and [4, 6)
    assert x.shape == (2, 1, E)
    np.testing.assert_allclose(x[:, 0, 0], [2.5, 4.5])
    assert ds.groups() == ["v1"] * 3 + ["v2"] and ds.groups("clip")[0] == "c1"
    assert ds.groups("split") == ["train"] * 3 + ["test"]


def test_ego4d_lta_features_per_parent_video(ego4d_root):
    ds = ego4d_lta(str(ego4d_root), features=str(ego4d_root / "video_features"), observed=2, z=3,
                   feature_index="video", tokens=2)
    np.testing.assert_allclose(ds.video(1)[..., 0], [[102.0, 103.0], [104.0, 105.0]])  # shifted by 100 s


# -- errors ------------------------------------------------------------------------------------------------------


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and excinfo.value.exit_code == 2
    return message


def test_missing_annotation_files(tmp_path, crosstask_root, ego4d_root):
    with pytest.raises(DataError) as e:
        coin(str(tmp_path / "nowhere"))
    assert "COIN annotation file not found" in one_line(e) and "COIN.json" in one_line(e)
    (crosstask_root / "crosstask_release" / "videos_val.csv").unlink()
    with pytest.raises(DataError) as e:
        crosstask(str(crosstask_root))
    assert one_line(e).endswith("videos_val.csv")
    (ego4d_root / "annotations" / "fho_lta_val.json").unlink()
    with pytest.raises(DataError) as e:
        ego4d_lta(str(ego4d_root))
    assert "fho_lta_val.json" in one_line(e)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "COIN.json: not valid JSON"),
        ('{"database": 3}', "COIN.json: malformed annotation"),
        ('{"database": {"v": {"recipe_type": 0, "subset": "training", "annotation": [{"id": "1"}]}}}',
         "video 'v': bad or missing 'segment'"),
        ('{"database": {"v": {"recipe_type": 0, "subset": "validation", "annotation": []}}}',
         "video 'v': bad or missing 'validation'"),
    ],
)
def test_malformed_coin_annotations(coin_root, content, expected):
    (coin_root / "COIN.json").write_text(content)
    with pytest.raises(DataError) as e:
        coin(str(coin_root))
    assert expected in one_line(e)


def test_malformed_crosstask_and_niv(crosstask_root, niv_root):
    (crosstask_root / "crosstask_release" / "tasks_primary.txt").write_text("111\nMake Tea\nurl\nthree\na,b,c\n")
    with pytest.raises(DataError) as e:
        crosstask(str(crosstask_root))
    assert "tasks_primary.txt: malformed annotation" in one_line(e)
    (niv_root / "niv_valid.json").write_text('{"cpr_0002": {"task_id": 2, "steps": [{"action_id": 1}]}}')
    with pytest.raises(DataError) as e:
        niv(str(niv_root))
    assert "niv_valid.json: malformed annotation (video 'cpr_0002': bad or missing 'start')" in one_line(e)


def test_bad_feature_files(coin_root):
    features = coin_root / "features"
    (features / "vidA.npy").write_bytes(b"not an array at all")
    with pytest.raises(DataError) as e:
        coin(str(coin_root))
    assert "vidA.npy: unreadable feature file" in one_line(e)
    np.save(features / "vidA.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(DataError) as e:
        coin(str(coin_root))
    assert "vidA.npy: expected an (N, E) array" in one_line(e)
    np.save(features / "vidA.npy", np.zeros((5, E + 1), dtype=np.float32))
    with pytest.raises(DataError) as e:
        coin(str(coin_root))
    assert "vidB.npy: feature width 3 differs from the other videos' 4" in one_line(e)


def test_no_features(coin_root, tmp_path):
    with pytest.raises(DataError) as e:
        coin(str(coin_root), features=str(tmp_path / "missing"))
    assert "features folder does not exist" in one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        coin(str(coin_root), features=str(tmp_path / "empty"))
    assert "no feature file for any of 4 videos" in one_line(e)


def test_missing_features_are_skipped_with_a_warning(coin_root, caplog):
    ds = coin(str(coin_root), task="classification")
    assert "vidD" not in ds.groups()
    assert "1 of 4 videos have no feature file" in caplog.text


def test_registered_names_and_presets_resolve(monkeypatch):
    """The plugins register their names, and every procedural preset in registry.yaml passes the signature check."""
    import yaml
    from benchkit_datasets import procedural, procedural_synthetic

    from benchkit.registry.plugins import REGISTRY_FILE, load_plugins

    monkeypatch.setenv("BENCHKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("BENCHKIT_PLUGINS", raising=False)
    registry = load_plugins(extra=[procedural, procedural_synthetic], registry_files=[REGISTRY_FILE])
    assert {"coin", "crosstask", "niv", "ego4d-lta", "procedural-synthetic"} <= set(registry.entries["dataset"])
    presets = yaml.safe_load(REGISTRY_FILE.read_text())["dataset"]
    ours = [n for n, p in presets.items() if p["plugin"] in registry.entries["dataset"] and p["plugin"] != "synthetic"]
    assert len(ours) >= 12 and "coin-planning-t4" in ours
    for name in ours:
        given = {} if presets[name]["plugin"] == "procedural-synthetic" else {"root": "data"}
        assert registry.resolve("dataset", name, given).entry.name == presets[name]["plugin"]


def test_a_video_id_cannot_lead_outside_the_features_folder(coin_root):
    """A video id read from the annotation names a feature file; ``../`` in it is refused with one line."""
    write_features(coin_root, "stolen", ramp(20), "npy")  # beside, not inside, features/
    data = json.loads((coin_root / "COIN.json").read_text())
    data["database"]["../stolen"] = data["database"].pop("vidA")
    (coin_root / "COIN.json").write_text(json.dumps(data))
    message = re.escape("'../stolen.npy' named in the coin annotations leads outside")
    with pytest.raises(DataError, match=message) as excinfo:
        coin(str(coin_root), task="classification")
    assert "\n" not in str(excinfo.value)


def test_the_counts_command(niv_root, crosstask_root, tmp_path, capsys):
    """``python -m benchkit_datasets.procedural_counts``: the command behind the counts docs/procedural.md quotes."""
    from benchkit_datasets.procedural_counts import main

    assert main(["niv", str(niv_root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["tasks"], out["steps"], out["videos"]) == (3, 25, {"test": 1, "train": 1})
    assert out["windows"] == {"T=3": {"test": 1, "train": 2}, "T=4": {"test": 0, "train": 1}}
    assert out["samples"] == {"T=3": {"test": 1, "train": 2}, "T=4": {"train": 1}}
    assert main(["crosstask", str(crosstask_root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["tasks"], out["steps"], out["videos"]) == (2, 5, {"test": 1, "train": 1})
    assert out["samples"]["T=3"] == {"test": 1, "train": 2}
    assert main(["niv", str(tmp_path / "nowhere")]) == 2
    assert "NIV annotation file not found" in capsys.readouterr().err
    assert main(["kinetics", str(niv_root)]) == 2
