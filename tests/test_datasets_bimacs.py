"""The ``bimacs`` dataset on tiny fixtures in the KIT Bimanual Actions layout (spec invpatch.md §4).

Where the fixture's structure comes from:

- Layout and names: the dataset's own (``bimacs_rgbd_data/<subject>/<task>/<take>/rgb/chunk_<k>/frame_<n>.png`` and
  ``bimacs_rgbd_data_ground_truth/<subject>/<task>/<take>.json``; subjects ``subject_1..6``, tasks such as
  ``task_1_k_cooking`` and ``task_8_w_hammering``, takes ``take_0..9``, as the authors' Python package ``bimacs``
  lists them). InvPatch's ``dataset_preprocessing/bimacs/process_raw_data.py`` (GitHub ``nrasajski/InvPatch``)
  walks the same folders and notes a metadata file beside the chunk folders in ``rgb/``.
- Label files: ``{"right_hand": [f0, id0, f1, ..., fN], "left_hand": [...]}`` with the last boundary the take's last
  frame, e.g. ``{"right_hand": [0, 0, 1015], "left_hand": [0, 0, 1015]}`` for a 1016-frame take (quoted in a
  public BIMACS loader); the authors' labelling tool starts every take as ``[0, null, frameCount - 1]``.
- Rules: the authors' package (``bimacs/iterators.py`` ``walk_segmentation``: a segment ends at ``f_{i+1} - 1``;
  ``bimacs/convert_functions.py`` ``id_to_action``: ``None`` is ``unknown``) against InvPatch's preprocessing
  (``f_i <= frame <= f_{i+1}``, first match wins; null read as idle by its loader, spec invpatch.md §4).
- Frame rates: the dataset's information page (bimanual-actions.humanoids.kit.edu): 30 fps, 83 of the 540
  recordings at 15 fps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchkit_datasets._bimacs_labels import BIMACS_ACTIONS, UNCOVERED, UNKNOWN, read_labels
from benchkit_datasets.bimacs import Bimacs
from PIL import Image

from benchkit.errors import BenchkitError, ConfigError, DataError, PluginError

U, C = UNKNOWN, UNCOVERED
TAKE = "subject_1/task_1_k_cooking/take_0"
OTHER = "subject_2/task_8_w_hammering/take_4"
# 10 frames, last boundary 9 = frameCount - 1 (the labelling tool's convention). right: approach from 0, a null
# stretch from 4, lift from 6; left: hold throughout.
RIGHT = [0, 1, 4, None, 6, 3, 9]
LEFT = [0, 5, 9]
HOLD, APPROACH, LIFT, HAMMER, IDLE = 5, 1, 3, 8, 0


def grey(n: int) -> int:
    return 10 * n + 5


def write_take(root: Path, take: str, n: int, labels: dict | str | None, ext: str = "png",
               metadata: str = "name,type,value\nframe_height,unsigned int,12\n") -> Path:
    rgb = root / "bimacs_rgbd_data" / take / "rgb"
    for i in range(n):
        chunk = rgb / f"chunk_{i // 5}"  # the dataset splits a take's frames over chunk folders
        chunk.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((12, 16, 3), grey(i), np.uint8)).save(chunk / f"frame_{i}.{ext}")
    (rgb / "metadata.csv").write_text(metadata)  # other files in rgb/ are read only for a frame rate
    if labels is not None:
        path = root / "bimacs_rgbd_data_ground_truth" / f"{take}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(labels if isinstance(labels, str) else json.dumps(labels))
    return rgb


@pytest.fixture
def root(tmp_path) -> Path:
    write_take(tmp_path, TAKE, 10, {"right_hand": RIGHT, "left_hand": LEFT})
    write_take(tmp_path, OTHER, 16, {"right_hand": [0, HAMMER, 15], "left_hand": [0, HOLD, 15]})
    return tmp_path


def targets(ds) -> list[list[int]]:
    return [ds.targets(i) for i in range(len(ds))]


# -- the label rules ---------------------------------------------------------------------------------------------


def test_half_open_boundaries_and_null_as_unknown_are_the_authors(tmp_path):
    path = tmp_path / "take.json"
    path.write_text(json.dumps({"right_hand": RIGHT, "left_hand": LEFT}))
    right = read_labels(path, 10)[:, 1].tolist()
    # [0, 4) approach, [4, 6) unknown, [6, 9) lift; frame 9 (the last boundary) lies in no segment
    assert right == [APPROACH] * 4 + [U] * 2 + [LIFT] * 3 + [C]
    assert read_labels(path, 10)[:, 0].tolist() == [HOLD] * 9 + [C]


def test_inclusive_boundaries_are_invpatchs_preprocessing(tmp_path):
    path = tmp_path / "take.json"
    path.write_text(json.dumps({"right_hand": RIGHT, "left_hand": LEFT}))
    right = read_labels(path, 10, "inclusive")[:, 1].tolist()
    # every boundary frame gets the earlier segment's action: 4 stays approach, 6 stays in the null segment
    assert right == [APPROACH] * 5 + [U] * 2 + [LIFT] * 3
    assert read_labels(path, 10, "inclusive")[:, 0].tolist() == [HOLD] * 10


def test_a_take_the_tool_never_labelled_is_all_unknown(tmp_path):
    path = tmp_path / "take.json"
    path.write_text(json.dumps({"right_hand": [0, None, 1015], "left_hand": [0, IDLE, 1015]}))
    labels = read_labels(path, 1016)
    assert set(labels[:1015, 1].tolist()) == {U} and labels[1015, 1] == C
    assert set(labels[:1015, 0].tolist()) == {IDLE}


# -- windows -----------------------------------------------------------------------------------------------------


def test_windows_never_touch_unknown_frames(root):
    ds = Bimacs(str(root), frames=3, size=8)
    # take 0: labelled stretches 0..3 and 6..8 (4, 5 unknown; 9 uncovered): starts 0, 1 (end-aligned) and 6;
    # take 1 (16 frames, last boundary 15): stretch 0..14: starts 0, 2, 4, ..., 12
    assert [ds._windows[i] for i in range(3)] == [(0, 0), (0, 1), (0, 6)]
    assert targets(ds)[:3] == [[HOLD, APPROACH] * 3, [HOLD, APPROACH] * 3, [HOLD, LIFT] * 3]
    assert len(ds) == 3 + 7
    assert all(a >= 0 for t in targets(ds) for a in t)


def test_null_label_idle_reads_null_as_idle(root):
    ds = Bimacs(str(root), frames=3, size=8, null_label="idle")
    # take 0: stretch 0..8: starts 0, 2, 4, 6
    assert targets(ds)[:4] == [[HOLD, APPROACH] * 3, [HOLD, APPROACH, HOLD, APPROACH, HOLD, IDLE],
                               [HOLD, IDLE, HOLD, IDLE, HOLD, LIFT], [HOLD, LIFT] * 3]
    assert len(ds) == 4 + 7


def test_unlabelled_idle_labels_uncovered_frames(root):
    base = Bimacs(str(root), frames=3, size=8)
    ds = Bimacs(str(root), frames=3, size=8, unlabelled="idle")
    assert targets(ds)[2] == [HOLD, LIFT, HOLD, LIFT, HOLD, LIFT]  # stretch 6..9: starts 6, 7
    assert targets(ds)[3] == [HOLD, LIFT, HOLD, LIFT, IDLE, IDLE]  # frame 9 (uncovered) as idle
    assert len(ds) == len(base) + 2  # + the end-aligned windows that reach each take's last frame


def test_invpatch_rules_reproduce_the_reference_windows(root):
    """Inclusive boundaries and null as idle (the paper grid): every frame is labelled, so the windows are the
    reference's ``create_samples`` over the whole take (16 frames, stride 15) with first-match labels."""
    ds = Bimacs(str(root), frames=4, size=8, boundaries="inclusive", null_label="idle")
    assert [ds._windows[i] for i in range(3)] == [(0, 0), (0, 3), (0, 6)]
    assert targets(ds)[1] == [HOLD, APPROACH, HOLD, APPROACH, HOLD, IDLE, HOLD, IDLE]  # frames 3..6
    assert targets(ds)[2] == [HOLD, IDLE] + [HOLD, LIFT] * 3  # frames 6..9: 6 is the null segment's end
    assert len(ds) == 3 + 5


def test_sixteen_frames_give_thirty_two_actions(root):
    ds = Bimacs(str(root), size=8, boundaries="inclusive", null_label="idle")
    assert len(ds) == 1  # take 0 is shorter than a window; take 1 is exactly one
    assert ds.targets(0) == [HOLD, HAMMER] * 16 and len(ds.targets(0)) == 32
    assert len(Bimacs(str(root), size=8)) == 0  # half-open: take 1's last frame is unlabelled, 15 are left


def test_frames_are_read_in_number_order_across_chunks(root):
    ds = Bimacs(str(root), frames=4, size=None, boundaries="inclusive", null_label="idle")
    video = ds.video(1)  # frames 3..6: chunk_0 and chunk_1
    assert video.shape == (4, 12, 16, 3) and video.dtype == np.uint8
    assert [int(f[0, 0, 0]) for f in video] == [grey(i) for i in range(3, 7)]  # lossless PNG: exact
    small = Bimacs(str(root), frames=4, size=8, boundaries="inclusive", null_label="idle")
    assert small.video(1).shape == (4, 8, 8, 3)
    assert int(small.video(1)[2, 3, 3, 1]) == grey(5)  # area resize of a flat frame


# -- frame rates -------------------------------------------------------------------------------------------------


def test_each_takes_frame_rate_is_recorded(root, tmp_path):
    ds = Bimacs(str(root), frames=3, size=8)
    assert ds.take_fps == {TAKE: 30.0, OTHER: 30.0} and set(ds.take_fps_source.values()) == {"fps"}
    assert Bimacs(str(root), frames=3, size=8, fps=15).take_fps[TAKE] == 15.0
    declared = tmp_path / "fps.csv"
    declared.write_text(f"take,fps\n{OTHER},15\n")
    ds = Bimacs(str(root), frames=3, size=8, take_fps=str(declared))
    assert ds.take_fps == {TAKE: 30.0, OTHER: 15.0} and ds.take_fps_source[OTHER] == "take_fps"
    assert Bimacs(str(root), frames=3, size=8, take_fps={OTHER: 15}).take_fps[OTHER] == 15.0
    (root / "bimacs_rgbd_data" / OTHER / "rgb" / "metadata.csv").write_text("name,type,value\nfps,unsigned int,15\n")
    ds = Bimacs(str(root), frames=3, size=8)
    assert ds.take_fps[OTHER] == 15.0 and ds.take_fps_source[OTHER] == "metadata.csv"
    with pytest.raises(DataError, match=r"gives take .* 30 fps but .*metadata\.csv records 15") as e:
        Bimacs(str(root), frames=3, size=8, take_fps={OTHER: 30})
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="names take 'subject_9/x/take_0', which is not under"):
        Bimacs(str(root), frames=3, size=8, take_fps={"subject_9/x/take_0": 15})


def test_a_common_rate_resamples_the_takes(root):
    """Take 1 recorded at 15 fps, take 0 at 30: at ``rate: 15`` take 0 keeps every other frame."""
    (root / "bimacs_rgbd_data" / OTHER / "rgb" / "metadata.csv").write_text("fps,15\n")
    native = Bimacs(str(root), frames=3, size=None, boundaries="inclusive", null_label="idle")
    ds = Bimacs(str(root), frames=3, size=None, boundaries="inclusive", null_label="idle", rate=15)
    # take 0 at 15 fps: frames 0, 2, 4, 6, 8 -> windows (0, 2, 4) and (4, 6, 8); take 1 unchanged
    assert [int(f[0, 0, 0]) for f in ds.video(0)] == [grey(0), grey(2), grey(4)]
    assert [int(f[0, 0, 0]) for f in ds.video(1)] == [grey(4), grey(6), grey(8)]
    assert ds.targets(1) == [HOLD, APPROACH, HOLD, IDLE, HOLD, LIFT]  # the labels of frames 4, 6, 8
    assert targets(ds)[2:] == targets(native)[5:] and len(ds) == 2 + 8
    up = Bimacs(str(root), frames=3, size=None, boundaries="inclusive", null_label="idle", rate=30)
    assert [int(f[0, 0, 0]) for f in up.video(5)] == [grey(0), grey(0), grey(1)]  # 15 fps repeated up to 30
    same = Bimacs(str(root), frames=3, size=None, boundaries="inclusive", null_label="idle", seconds=0.2)
    assert targets(same) == targets(ds) and same.fingerprint() == ds.fingerprint()  # 3 frames / 0.2 s = 15 fps


def test_options_change_the_fingerprint(root):
    base = Bimacs(str(root), frames=4, size=8).fingerprint()
    for options in ({"size": 16}, {"unlabelled": "idle"}, {"boundaries": "inclusive"}, {"null_label": "idle"},
                    {"rate": 15}, {"seconds": 1.0}):
        assert Bimacs(str(root), **{"frames": 4, "size": 8, **options}).fingerprint() != base, options
    assert Bimacs(str(root), frames=4, size=8, fps=15).fingerprint() == base  # no resampling: rates do not matter
    resampled = Bimacs(str(root), frames=4, size=8, rate=15).fingerprint()
    assert Bimacs(str(root), frames=4, size=8, rate=15, fps=15).fingerprint() != resampled
    (root / "bimacs_rgbd_data_ground_truth" / f"{TAKE}.json").write_text(json.dumps({"right_hand": RIGHT,
                                                                                     "left_hand": [0, 4, 9]}))
    assert Bimacs(str(root), frames=4, size=8).fingerprint() != base


# -- groups, vocabulary, files -----------------------------------------------------------------------------------


def test_groups_and_vocabulary(root):
    ds = Bimacs(str(root), frames=4, size=8, boundaries="inclusive", null_label="idle")
    assert list(ds.groups()) == [TAKE] * 3 + [OTHER] * 5
    assert list(ds.groups("subject")) == ["subject_1"] * 3 + ["subject_2"] * 5
    assert ds.vocabulary.actions == BIMACS_ACTIONS and len(BIMACS_ACTIONS) == 14
    assert not ds.vocabulary.delimiter and ds.vocabulary.size == 17 and ds.vocabulary.eos == 16  # the reference's


def test_jpeg_frames_and_a_cached_take(root, monkeypatch):
    write_take(root, "subject_3/task_1_k_cooking/take_0", 5, {"right_hand": [0, 2, 4], "left_hand": [0, 2, 4]}, "jpg")
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
    ("options", "why"),
    [
        ({"boundaries": "closed"}, "boundaries must be one of half_open, inclusive, got 'closed'"),
        ({"null_label": "none"}, "null_label must be one of unknown, idle, got 'none'"),
        ({"unlabelled": "keep"}, "unlabelled must be one of drop, idle, got 'keep'"),
        ({"rate": 0}, "rate must be a positive number"),
        ({"fps": -30}, "fps must be a positive number"),
        ({"rate": 15, "seconds": 1.0}, "give rate or seconds, not both"),
    ],
)
def test_bad_options_are_one_line(root, options, why):
    with pytest.raises(ConfigError, match=why) as e:
        Bimacs(str(root), frames=4, **options)
    assert "\n" not in str(e.value) and e.value.exit_code == 2


def test_the_registry_checks_option_names_and_values(root, monkeypatch):
    from benchkit_datasets import bimacs

    from benchkit.registry.plugins import load_plugins

    monkeypatch.setenv("BENCHKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("BENCHKIT_PLUGINS", raising=False)
    registry = load_plugins(extra=[bimacs], registry_files=[])
    with pytest.raises(PluginError, match="unexpected keyword 'boundary'; did you mean 'boundaries'"):
        registry.resolve("dataset", "bimacs", {"root": str(root), "boundary": "inclusive"})
    resolved = registry.resolve("dataset", "bimacs", {"root": str(root), "null_label": "nothing"})
    with pytest.raises(BenchkitError, match="null_label must be one of") as e:
        registry.build("dataset", resolved)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("labels", "why"),
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


def test_an_unreadable_frame_or_rate_is_one_line_naming_it(root):
    metadata = root / "bimacs_rgbd_data" / TAKE / "rgb" / "metadata.csv"
    metadata.write_text("fps,fast\n")
    with pytest.raises(DataError, match="frame rate 'fast' is not a positive number") as e:
        Bimacs(str(root), frames=4)
    assert str(metadata) in str(e.value)
    metadata.write_text("name,type,value\n")
    bad = root / "bimacs_rgbd_data" / TAKE / "rgb" / "chunk_0" / "frame_1.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError) as e:
        Bimacs(str(root), frames=4, size=8).video(0)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
