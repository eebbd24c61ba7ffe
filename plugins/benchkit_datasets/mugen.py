"""``mugen``: MUGEN (Hayes et al., 2022) clips with actions derived from the released game traces (spec invpatch.md §4).

Layout (see docs/datasets.md): ``root`` holds the released per-clip JSON traces (``<run>/video_metadata/<clip>.json``
in the release; any depth is searched), ``videos`` (default: ``root``) the rendered clips, named ``<clip>.mp4`` or
``<clip>_constructed.mp4`` as MUGEN's renderer writes them. The rendered videos are the clips, as in the reference
(``create_sampled_dataset.py``): a video without its trace is an error, a trace without a video is not a clip.

Actions come from consecutive frames' agent positions ``frames[i].agent.x / .y`` by the reference rule
(``mugen_rules.action_from_motion``). Each clip is cut into windows of ``frames`` frames with stride ``frames - 1``,
the last aligned to the end (``windows.py``); ``labels="transitions"`` (default, the reference code) gives 15
actions per 16-frame window, ``labels="frames"`` the paper's 16 (one outgoing transition per frame). ``clips``
samples that many clips uniformly without replacement, seeded by ``seed`` (the paper: 2,500). Frames are decoded
once with PyAV, resized to ``size`` and cached per clip (``frame_cache.py``). Grouping keys: ``video`` (the clip,
the paper's) and ``level`` (every clip cut from the same game level).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np

from benchkit.api import DataError, Vocabulary, hookimpl, stable_hash
from benchkit_datasets._frame_cache import cached_array
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS, action_from_motion
from benchkit_datasets._video_io import VIDEO_SUFFIXES, decode_video, parse_size, quick_digest
from benchkit_datasets._windows import WindowedVideos, check_window_args, transition_windows

MUGEN_VERSION = 1
RENDER_SUFFIX = "_constructed"  # MUGEN's construct_data_from_json.py appends it to the clip name


def clip_name(video: Path) -> str:
    stem = video.stem
    return stem[: -len(RENDER_SUFFIX)] if stem.endswith(RENDER_SUFFIX) else stem


def trace_actions(path: Path, text: bytes) -> np.ndarray:
    """The per-transition actions of one JSON trace; a malformed trace is a ``DataError`` naming the file."""
    try:
        frames = json.loads(text)["frames"]
        positions = [(float(f["agent"]["x"]), float(f["agent"]["y"])) for f in frames]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise DataError(f"malformed MUGEN trace {path}: no frames[i].agent.x / .y ({type(e).__name__}: {e})") from None
    if len(positions) < 2 or not all(math.isfinite(c) for p in positions for c in p):
        raise DataError(f"malformed MUGEN trace {path}: needs at least 2 frames with finite agent positions")
    return np.array(
        [action_from_motion(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(positions)], dtype=np.int64
    )


def _index(folder: Path, suffixes: tuple[str, ...], name) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file()):
        found.setdefault(name(path), []).append(path)
    return found


def _one(found: dict[str, list[Path]], name: str) -> Path:
    if len(found[name]) > 1:
        raise DataError(f"mugen: two files for clip {name!r}: {found[name][0]} and {found[name][1]}")
    return found[name][0]


class Mugen(WindowedVideos):
    """MUGEN clips cut into windows, with the 7 MUGEN actions derived from the agent's motion."""

    name = "mugen"

    def __init__(
        self,
        root: str,
        videos: str | None = None,
        frames: int = 16,
        stride: int | None = None,
        labels: str = "transitions",
        size: int | list[int] | None = 224,
        clips: int | None = None,
        seed: int = 0,
    ) -> None:
        stride = check_window_args(frames, stride, labels)
        self._size = parse_size(size)
        if clips is not None and clips < 1:
            raise ValueError(f"clips must be >= 1 or null (all), got {clips}")
        self.root = Path(root).expanduser()
        self.videos_dir = Path(videos).expanduser() if videos else self.root
        for folder in {self.root, self.videos_dir}:
            if not folder.is_dir():
                raise DataError(f"mugen: not a folder: {folder}")
        self.vocabulary = Vocabulary(MUGEN_ACTIONS, delimiter=True)
        self.params = dict(frames=frames, stride=stride, labels=labels, size=list(self._size) if self._size else None,
                           clips=clips, seed=seed)

        rendered = _index(self.videos_dir, VIDEO_SUFFIXES, clip_name)
        if not rendered:
            raise DataError(f"mugen: no rendered videos ({', '.join(VIDEO_SUFFIXES)}) under {self.videos_dir}")
        traces = _index(self.root, (".json",), lambda p: p.stem)
        names = sorted(rendered)
        if clips is not None:
            if clips > len(names):
                raise DataError(f"mugen: {clips} clips asked for, {len(names)} rendered under {self.videos_dir}")
            pick = np.random.default_rng(seed).choice(len(names), size=clips, replace=False)
            names = [names[i] for i in sorted(pick)]
        self.clips, self._videos, actions, trace_digests = names, [], [], []
        for name in names:
            video = _one(rendered, name)
            if name not in traces:
                raise DataError(f"mugen: no JSON trace {name}.json under {self.root} for video {video}")
            trace = _one(traces, name)
            text = trace.read_bytes()
            actions.append(trace_actions(trace, text))
            trace_digests.append(hashlib.sha256(text).hexdigest()[:20])
            self._videos.append(video)
        self._trace_digests = trace_digests
        self._frame_counts = [len(a) + 1 for a in actions]
        self._video_digests: dict[int, str] = {}
        self._fingerprint: str | None = None
        windows, targets = transition_windows(actions, frames, stride, labels)
        levels = [n.split("_video_frames")[0] for n in names]
        self._set_windows(windows, targets, {"video": names, "level": levels}, frames)

    def _video_digest(self, source: int) -> str:
        if source not in self._video_digests:
            self._video_digests[source] = quick_digest(self._videos[source])
        return self._video_digests[source]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            sources = [(n, self._trace_digests[i], self._video_digest(i)) for i, n in enumerate(self.clips)]
            self._fingerprint = f"mugen-v{MUGEN_VERSION}:" + json.dumps(
                {**self.params, "sources": stable_hash(sources, 20), "n_sources": len(sources)}, sort_keys=True
            )
        return self._fingerprint

    def source_frames(self, source: int) -> np.ndarray:
        path, n = self._videos[source], self._frame_counts[source]
        payload = {"video": self._video_digest(source), "size": self.params["size"], "frames": n}

        def decode() -> np.ndarray:
            video = decode_video(path, self._size, limit=n)
            if len(video) < n:
                raise DataError(f"mugen: video {path} has {len(video)} frames, its trace has {n}")
            return video

        return cached_array("mugen", payload, decode)

    def describe_source(self, source: int) -> str:
        return f"video {self._videos[source]}"


@hookimpl
def benchkit_register(registry):
    registry.dataset("mugen", Mugen, paths=("root", "videos"), task="inverse_dynamics")
