"""The ``mugen`` dataset on a tiny fixture in MUGEN's released layout (spec invpatch.md §4): JSON traces under
``<run>/video_metadata/`` and rendered ``<clip>_constructed.mp4`` videos; windows, actions, groups, vocabulary,
subset sampling, the frame cache and one-line errors naming the file. Also the shared windowing rule."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from benchkit_datasets import mugen as mugen_module
from benchkit_datasets._windows import window_starts
from benchkit_datasets.mugen import Mugen

from benchkit.errors import DataError, PluginError

RUN = "model_seed_406"
# Agent positions (y up) chosen so that consecutive frames produce, in order:
# inaction, move_right, move_left, jump, jump_right, jump_left, descend, descend (dx > 0 but dy < 0 wins), inaction
POSITIONS = [(0, 0), (0, 0), (1, 0), (0, 0), (0, 1), (1, 2), (0, 3), (0, 2), (1, 1), (1.0, 1.0)]
ACTIONS = [0, 1, 2, 3, 4, 5, 6, 6, 0]


def grey(i: int) -> int:
    return (20 * i + 10) % 250


def write_video(path: Path, n: int, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "0"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), grey(i), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_trace(path: Path, positions) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [{"frame_id": i, "agent": {"x": x, "y": y, "vx": 0.0}, "monsters": []}
              for i, (x, y) in enumerate(positions)]
    path.write_text(json.dumps({"game_id": 1, "frames": frames}))


def clip(level: int, start: int) -> str:
    return f"{RUN}_level_{level:04d}_video_frames_{start:04d}_to_{start + 9:04d}"


@pytest.fixture
def root(tmp_path) -> Path:
    """Two clips of the same level and one of another; a trace without a rendered video (not a clip)."""
    for name in (clip(1, 0), clip(1, 10), clip(2, 0)):
        write_trace(tmp_path / RUN / "video_metadata" / f"{name}.json", POSITIONS)
        write_video(tmp_path / RUN / "videos" / f"{name}_constructed.mp4", len(POSITIONS))
    write_trace(tmp_path / RUN / "video_metadata" / f"{clip(3, 0)}.json", POSITIONS)
    return tmp_path


def test_window_starts_follow_the_reference_rule():
    assert window_starts(96, 16, 15) == [0, 15, 30, 45, 60, 75, 80]  # a 3.2 s MUGEN clip: 7 windows, last end-aligned
    assert window_starts(31, 16, 15) == [0, 15]  # the second window already ends at the last frame
    assert window_starts(32, 16, 15) == [0, 15, 16]
    assert window_starts(16, 16, 15) == [0]
    assert window_starts(15, 16, 15) == []  # shorter than a window: none


def test_windows_actions_groups_and_vocabulary(root):
    ds = Mugen(str(root), frames=4, size=16)
    assert ds.clips == [clip(1, 0), clip(1, 10), clip(2, 0)]  # the trace without a video is not a clip
    assert len(ds) == 9  # 10 frames, windows of 4 with stride 3: starts 0, 3, 6
    assert [ds.targets(i) for i in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 6, 0]]
    assert ds.targets(3) == ACTIONS[:3]
    assert list(ds.groups()) == [clip(1, 0)] * 3 + [clip(1, 10)] * 3 + [clip(2, 0)] * 3
    assert list(ds.groups("level")) == [f"{RUN}_level_0001"] * 6 + [f"{RUN}_level_0002"] * 3
    with pytest.raises(DataError, match="unknown grouping key 'take'"):
        ds.groups("take")
    assert ds.vocabulary.actions == (
        "inaction", "move_right", "move_left", "jump", "jump_right", "jump_left", "descend"
    )
    assert ds.vocabulary.delimiter and ds.vocabulary.size == 11  # the reference's MUGEN vocabulary


def test_frames_are_decoded_resized_and_windowed(root):
    ds = Mugen(str(root), frames=4, size=16)
    video = ds.video(1)  # frames 3..6
    assert video.shape == (4, 16, 16, 3) and video.dtype == np.uint8
    np.testing.assert_allclose(video.reshape(4, -1).mean(1), [grey(i) for i in range(3, 7)], atol=2)
    assert Mugen(str(root), frames=4, size=[8, 12]).video(0).shape == (4, 8, 12, 3)
    assert Mugen(str(root), frames=4, size=None).video(0).shape == (4, 32, 32, 3)  # native resolution


def test_paper_option_one_action_per_frame(root):
    ds = Mugen(str(root), frames=4, size=16, labels="frames")
    # only the 9 frames with an outgoing transition are windowed: starts 0, 3, then 5 aligned to their end
    assert [ds.targets(i) for i in range(3)] == [[0, 1, 2, 3], [3, 4, 5, 6], [5, 6, 6, 0]]
    np.testing.assert_allclose(ds.video(2).reshape(4, -1).mean(1), [grey(i) for i in range(5, 9)], atol=2)


def test_sixteen_frame_windows_of_a_long_clip(tmp_path):
    positions = [(float(i // 4), 0.0) for i in range(40)]  # moves right on every 4th transition
    write_trace(tmp_path / "c.json", positions)
    write_video(tmp_path / "c.mp4", 40, size=16)
    ds = Mugen(str(tmp_path), size=8)
    assert len(ds) == 3  # starts 0, 15, then 24 aligned to the end
    assert all(len(ds.targets(i)) == 15 for i in range(3))
    assert ds.targets(2) == [1 if (t + 1) % 4 == 0 else 0 for t in range(24, 39)]
    assert ds.video(2).shape == (16, 8, 8, 3)


def test_subset_sampling_is_seeded(root):
    a, b = Mugen(str(root), frames=4, size=16, clips=2, seed=0), Mugen(str(root), frames=4, size=16, clips=2, seed=0)
    assert a.clips == b.clips and len(a.clips) == 2 and len(a) == 6
    picks = {tuple(Mugen(str(root), frames=4, size=16, clips=2, seed=s).clips) for s in range(10)}
    assert len(picks) > 1  # the seed chooses the subset
    assert a.fingerprint() != Mugen(str(root), frames=4, size=16).fingerprint()
    with pytest.raises(DataError, match="4 clips asked for, 3 rendered"):
        Mugen(str(root), clips=4)


def test_decoded_frames_are_cached_on_disk(root, monkeypatch, tmp_path_factory):
    first = Mugen(str(root), frames=4, size=16).video(4)
    cache = tmp_path_factory.getbasetemp() / "cache" / "datasets" / "mugen"
    assert len(list(cache.glob("*.npy"))) >= 2

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(mugen_module, "decode_video", no_decoding)
    np.testing.assert_array_equal(Mugen(str(root), frames=4, size=16).video(4), first)
    assert Mugen(str(root), frames=4, size=16).fingerprint() == Mugen(str(root), frames=4, size=16).fingerprint()


def test_fingerprint_follows_content_and_sampling(root):
    base = Mugen(str(root), frames=4, size=16).fingerprint()
    assert Mugen(str(root), frames=4, size=32).fingerprint() != base
    assert Mugen(str(root), frames=4, size=16, labels="frames").fingerprint() != base
    write_trace(root / RUN / "video_metadata" / f"{clip(2, 0)}.json", POSITIONS[::-1])
    assert Mugen(str(root), frames=4, size=16).fingerprint() != base


@pytest.mark.parametrize(
    "content, why",
    [("{not json", "malformed MUGEN trace"), (json.dumps({"frames": [{"agent": None}]}), "malformed MUGEN trace"),
     (json.dumps({"frames": [{"agent": {"x": 1, "y": 2}}]}), "at least 2 frames")],
)
def test_a_malformed_trace_is_one_line_naming_it(root, content, why):
    bad = root / RUN / "video_metadata" / f"{clip(2, 0)}.json"
    bad.write_text(content)
    with pytest.raises(DataError, match=why) as e:
        Mugen(str(root), frames=4)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_missing_files_are_one_line_naming_them(root, tmp_path_factory):
    (root / RUN / "video_metadata" / f"{clip(1, 10)}.json").unlink()
    with pytest.raises(DataError, match=f"no JSON trace {clip(1, 10)}.json") as e:
        Mugen(str(root), frames=4)
    assert f"{clip(1, 10)}_constructed.mp4" in str(e.value)
    with pytest.raises(DataError, match="no rendered videos"):
        Mugen(str(tmp_path_factory.mktemp("empty")))


def test_an_undecodable_or_short_video_is_one_line_naming_it(root):
    broken = root / RUN / "videos" / f"{clip(1, 0)}_constructed.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(DataError, match="cannot decode") as e:
        Mugen(str(root), frames=4, size=16).video(0)
    assert str(broken) in str(e.value) and "\n" not in str(e.value)
    write_video(broken, 5)
    with pytest.raises(DataError, match="has 5 frames, its trace has 10"):
        Mugen(str(root), frames=4, size=16).video(0)


def test_registered_with_its_paths_and_checked_arguments(registry, root):
    entry = registry.entries["dataset"]["mugen"]
    assert entry.meta["paths"] == ("root", "videos")
    resolved = registry.resolve("dataset", "mugen", {"root": str(root), "frames": 4, "labels": "actions"})
    with pytest.raises(PluginError, match="labels must be one of transitions, frames"):
        registry.build("dataset", resolved)
    preset = registry.resolve("dataset", "mugen-paper", {"root": str(root)})
    assert preset.kwargs["clips"] == 2500 and preset.kwargs["frames"] == 16
