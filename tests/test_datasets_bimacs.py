"""The ``bimacs`` dataset on a tiny fixture in the KIT Bimanual Actions layout (spec invpatch.md §4): RGB frames in
chunk folders per subject/task/take and the per-hand label JSON with flat ``[f0, id0, f1, id1, ..., fN]`` lists;
windows, [left, right] serialisation, frames without labels, groups, vocabulary and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchkit_datasets.bimacs import Bimacs
from benchkit_datasets.bimacs_labels import BIMACS_ACTIONS
from PIL import Image

from benchkit.errors import DataError

TAKE = "subject_1/task_1_k_cooking/take_0"
# right: approach on 0..4 (4 is shared with the next segment: the first wins), idle (null) on 5..6,
# lift on 7..8, frame 9 not covered; left: hold on every frame 0..9
RIGHT = [0, 1, 4, None, 6, 3, 8]
LEFT = [0, 5, 9]


def grey(n: int) -> int:
    return 10 * n + 5


def write_take(root: Path, take: str, n: int, labels: dict | str | None, ext: str = "png") -> Path:
    rgb = root / "bimacs_rgbd_data" / take / "rgb"
    for i in range(n):
        chunk = rgb / f"chunk_{i // 5}"  # the dataset splits a take's frames over chunk folders
        chunk.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((12, 16, 3), grey(i), np.uint8)).save(chunk / f"frame_{i}.{ext}")
    (rgb / "metadata.csv").write_text("frame,time\n")  # other files in rgb/ are ignored
    if labels is not None:
        path = root / "bimacs_rgbd_data_ground_truth" / f"{take}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(labels if isinstance(labels, str) else json.dumps(labels))
    return rgb


@pytest.fixture
def root(tmp_path) -> Path:
    write_take(tmp_path, TAKE, 10, {"right_hand": RIGHT, "left_hand": LEFT})
    write_take(tmp_path, "subject_2/task_3_w_hammering/take_4", 16, {"right_hand": [0, 8, 15], "left_hand": [0, 5, 15]})
    return tmp_path


def test_windows_and_left_right_serialisation(root):
    ds = Bimacs(str(root), frames=4, size=8)
    # take 0: starts 0, 3, 6; the window at 6 holds frame 9, which no right-hand segment covers: left out
    # take 1: 16 frames, starts 0, 3, 6, 9, 12
    assert len(ds) == 2 + 5
    assert ds.targets(0) == [5, 1, 5, 1, 5, 1, 5, 1]  # frames 0..3: [left, right] = [hold, approach]
    assert ds.targets(1) == [5, 1, 5, 1, 5, 0, 5, 0]  # frames 3..6: the boundary frame 4 keeps approach, null → idle
    assert ds.targets(2) == [5, 8] * 4


def test_frames_without_labels_can_be_idle(root):
    ds = Bimacs(str(root), frames=4, size=8, unlabelled="idle")
    assert len(ds) == 3 + 5
    assert ds.targets(2) == [5, 0, 5, 3, 5, 3, 5, 0]  # frames 6..9: idle, lift, lift, unlabelled → idle


def test_sixteen_frames_give_thirty_two_actions(root):
    ds = Bimacs(str(root), size=8)
    assert len(ds) == 1  # take 0 is shorter than a window; take 1 is exactly one
    assert ds.targets(0) == [5, 8] * 16 and len(ds.targets(0)) == 32


def test_frames_are_read_in_number_order_across_chunks(root):
    ds = Bimacs(str(root), frames=4, size=None)
    video = ds.video(1)  # frames 3..6: chunk_0 and chunk_1
    assert video.shape == (4, 12, 16, 3) and video.dtype == np.uint8
    assert [int(f[0, 0, 0]) for f in video] == [grey(i) for i in range(3, 7)]  # lossless PNG: exact
    assert Bimacs(str(root), frames=4, size=8).video(1).shape == (4, 8, 8, 3)
    assert int(Bimacs(str(root), frames=4, size=8).video(1)[2, 3, 3, 1]) == grey(5)  # area resize of a flat frame


def test_groups_vocabulary_and_fingerprint(root):
    ds = Bimacs(str(root), frames=4, size=8)
    assert list(ds.groups()) == [TAKE] * 2 + ["subject_2/task_3_w_hammering/take_4"] * 5
    assert list(ds.groups("subject")) == ["subject_1"] * 2 + ["subject_2"] * 5
    assert ds.vocabulary.actions == BIMACS_ACTIONS and len(BIMACS_ACTIONS) == 14
    assert not ds.vocabulary.delimiter and ds.vocabulary.size == 17 and ds.vocabulary.eos == 16  # the reference's
    base = ds.fingerprint()
    assert Bimacs(str(root), frames=4, size=16).fingerprint() != base
    assert Bimacs(str(root), frames=4, size=8, unlabelled="idle").fingerprint() != base
    (root / "bimacs_rgbd_data_ground_truth" / f"{TAKE}.json").write_text(json.dumps({"right_hand": RIGHT,
                                                                                     "left_hand": [0, 4, 9]}))
    assert Bimacs(str(root), frames=4, size=8).fingerprint() != base


def test_jpeg_frames_and_a_cached_take(root, tmp_path_factory, monkeypatch):
    write_take(root, "subject_3/task_1_k_cooking/take_0", 4, {"right_hand": [0, 2, 3], "left_hand": [0, 2, 3]}, "jpg")
    ds = Bimacs(str(root), frames=4, size=8)
    assert ds.targets(len(ds) - 1) == [2, 2] * 4
    first = ds.video(len(ds) - 1)
    assert abs(int(first[0, 0, 0, 0]) - grey(0)) <= 3  # jpeg: close, not exact
    from benchkit_datasets import bimacs as module

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(module, "decode_image", no_decoding)
    np.testing.assert_array_equal(Bimacs(str(root), frames=4, size=8).video(len(ds) - 1), first)


@pytest.mark.parametrize(
    "labels, why",
    [
        ("{broken", "malformed BIMACS labels"),
        ({"right_hand": RIGHT}, "needs both left_hand and right_hand"),
        ({"right_hand": [0, 1, 4, 2], "left_hand": LEFT}, "odd length"),
        ({"right_hand": [0, 1, 4, 20, 9], "left_hand": LEFT}, r"action ids must be null or 0\.\.13"),
        ({"right_hand": [4, 1, 0, 2, 9], "left_hand": LEFT}, "non-decreasing"),
    ],
)
def test_malformed_labels_are_one_line_naming_the_file(root, labels, why):
    path = root / "bimacs_rgbd_data_ground_truth" / f"{TAKE}.json"
    path.write_text(labels if isinstance(labels, str) else json.dumps(labels))
    with pytest.raises(DataError, match=why) as e:
        Bimacs(str(root), frames=4)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_files_are_one_line_naming_them(root, tmp_path_factory):
    label = root / "bimacs_rgbd_data_ground_truth" / f"{TAKE}.json"
    label.unlink()
    with pytest.raises(DataError, match="missing BIMACS label file") as e:
        Bimacs(str(root), frames=4)
    assert str(label) in str(e.value)
    label.write_text(json.dumps({"right_hand": RIGHT, "left_hand": LEFT}))
    (root / "bimacs_rgbd_data" / TAKE / "rgb" / "chunk_0" / "frame_2.png").unlink()
    with pytest.raises(DataError, match=r"frame 2 is missing in .*take_0/rgb"):
        Bimacs(str(root), frames=4)
    with pytest.raises(DataError, match="no RGB folder"):
        Bimacs(str(tmp_path_factory.mktemp("empty")))


def test_an_unreadable_frame_is_one_line_naming_it(root):
    bad = root / "bimacs_rgbd_data" / TAKE / "rgb" / "chunk_1" / "frame_5.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError) as e:
        Bimacs(str(root), frames=4, size=8).video(1)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
