"""``bimacs``: KIT Bimanual Actions (Dreher et al., 2020) takes with per-hand action labels (spec invpatch.md §4).

Layout (the dataset's own, see docs/datasets.md)::

    root/bimacs_rgbd_data/<subject>/<task>/<take>/rgb/chunk_<k>/frame_<n>.png     (jpg and webp work too)
    root/bimacs_rgbd_data_ground_truth/<subject>/<task>/<take>.json

Every take with an ``rgb`` folder is used; its frames must be numbered ``0 .. N-1`` across chunks, and its label
file must exist (``bimacs_labels.py``: ``boundaries`` half-open as the dataset's authors, or inclusive as InvPatch's
preprocessing; ``null_label`` unknown as the authors, or idle as InvPatch). A frame is usable when both hands have a
known action; frames that are not (null segments read as unknown, frames no segment covers unless ``unlabelled:
idle``) split a take into stretches, and each stretch is cut into windows of ``frames`` frames with stride
``frames - 1``, the last aligned to its end (``windows.py``): no window touches an unknown frame, so unknown frames
are neither targets nor scored. A window's target is per frame ``[left, right]``, serialised ``L0, R0, L1, R1, ...``
(32 actions for 16 frames).

Frame rate: each take's rate (``take_fps``) comes from its ``rgb/metadata.csv`` when that names one, else from
``take_fps`` (a file or mapping), else ``fps`` (30, the dataset's nominal rate; 83 of the 540 takes were recorded at
15). By default windows are ``frames`` consecutive frames whatever the rate (the paper's); ``rate`` (or ``seconds``,
the window's duration, i.e. ``rate = frames / seconds``) resamples every take to one rate first. Frames are decoded
once with PyAV, resized to ``size`` and cached per take (``frame_cache.py``). Grouping keys: ``take``
(subject/task/take, the paper's) and ``subject`` (cross-subject).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import numpy as np

from benchkit.api import ConfigError, DataError, Vocabulary, hookimpl, stable_hash
from benchkit_datasets._bimacs_labels import BIMACS_ACTIONS, BOUNDARIES, IDLE, UNCOVERED, UNKNOWN, read_labels
from benchkit_datasets._frame_cache import cached_array
from benchkit_datasets._video_io import IMAGE_SUFFIXES, decode_image, parse_size
from benchkit_datasets._windows import (
    WindowedVideos,
    check_window_args,
    labelled_runs,
    resample_index,
    window_starts,
)

BIMACS_VERSION = 2  # 2: half-open boundaries and unknown null segments by default, per-stretch windows, resampling
UNLABELLED_RULES: tuple[str, ...] = ("drop", "idle")
NULL_LABELS: tuple[str, ...] = ("unknown", "idle")
FPS_KEYS = frozenset({"fps", "framerate", "frame_rate", "frames_per_second", "framespersecond"})
_FRAME = re.compile(r"frame_(\d+)")


def take_frames(rgb: Path) -> list[Path]:
    """The frame files of one take in frame order; they must be numbered ``0 .. N-1``."""
    numbered: dict[int, Path] = {}
    for path in rgb.rglob("*"):
        match = _FRAME.fullmatch(path.stem)
        if match and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            n = int(match.group(1))
            if n in numbered:
                raise DataError(f"bimacs: frame {n} twice in {rgb}: {numbered[n]} and {path}")
            numbered[n] = path
    if not numbered:
        raise DataError(f"bimacs: no frame_<n> images ({', '.join(IMAGE_SUFFIXES)}) in {rgb}")
    missing = next((i for i in range(len(numbered)) if i not in numbered), None)
    if missing is not None:
        raise DataError(f"bimacs: frame {missing} is missing in {rgb} (frames must be numbered 0..N-1)")
    return [numbered[i] for i in range(len(numbered))]


def _positive(value: str, where: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0:
        raise DataError(f"{where}: frame rate {value!r} is not a positive number")
    return rate


def recorded_fps(rgb: Path) -> float | None:
    """The frame rate a take's ``rgb/metadata.csv`` names (a row ``fps,<value>`` or ``fps,<type>,<value>``; the
    key may also be ``framerate``, ``frame_rate`` or ``frames_per_second``), or ``None``."""
    path = rgb / "metadata.csv"
    if not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]})") from None
    for row in rows:
        if len(row) >= 2 and row[0].strip().lower() in FPS_KEYS:
            return _positive(row[-1].strip(), str(path))
    return None


def declared_fps(take_fps: str | dict | None) -> tuple[dict[str, float], str]:
    """``take → fps`` from ``take_fps``: a mapping, a JSON file of one, or a CSV of ``take,fps`` rows (a header
    row is skipped); and where it came from."""
    if take_fps is None:
        return {}, ""
    if isinstance(take_fps, dict):
        return {str(k): _positive(str(v), f"bimacs take_fps[{k!r}]") for k, v in take_fps.items()}, "take_fps"
    path = Path(take_fps).expanduser()
    if not path.is_file():
        raise DataError(f"bimacs: take_fps file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError('expected {"<subject>/<task>/<take>": fps}')
            pairs = [(str(k), str(v)) for k, v in data.items()]
        else:
            pairs = [(r[0].strip(), r[1].strip()) for r in csv.reader(text.splitlines()) if len(r) >= 2]
            if pairs and pairs[0][1].lower() in FPS_KEYS:
                pairs = pairs[1:]
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
        raise DataError(f"{path}: unreadable take_fps file ({str(e).splitlines()[0]})") from None
    return {take: _positive(value, f"{path} (take {take})") for take, value in pairs}, str(path)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"bimacs: {name} must be one of {', '.join(allowed)}, got {value!r}")


class Bimacs(WindowedVideos):
    """BIMACS takes cut into windows, with per-frame left- and right-hand actions."""

    name = "bimacs"

    def __init__(
        self,
        root: str,
        rgb_dir: str = "bimacs_rgbd_data",
        labels_dir: str = "bimacs_rgbd_data_ground_truth",
        frames: int = 16,
        stride: int | None = None,
        size: int | list[int] | None = 224,
        boundaries: Literal["half_open", "inclusive"] = "half_open",
        null_label: Literal["unknown", "idle"] = "unknown",
        unlabelled: Literal["drop", "idle"] = "drop",
        fps: float = 30.0,
        take_fps: str | dict[str, float] | None = None,
        rate: float | None = None,
        seconds: float | None = None,
    ) -> None:
        stride = check_window_args(frames, stride)
        _choice("boundaries", boundaries, BOUNDARIES)
        _choice("null_label", null_label, NULL_LABELS)
        _choice("unlabelled", unlabelled, UNLABELLED_RULES)
        for key, value in (("fps", fps), ("rate", rate), ("seconds", seconds)):
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise ConfigError(f"bimacs: {key} must be a positive number, got {value!r}")
        if rate is not None and seconds is not None:
            raise ConfigError("bimacs: give rate or seconds, not both (seconds: S means rate: frames / S)")
        common = float(frames) / seconds if seconds is not None else (float(rate) if rate is not None else None)
        self._size = parse_size(size)
        root_path = Path(root).expanduser()
        rgb_root, labels_root = root_path / rgb_dir, root_path / labels_dir
        if not rgb_root.is_dir():
            raise DataError(f"bimacs: no RGB folder {rgb_root}")
        self.vocabulary = Vocabulary(BIMACS_ACTIONS, delimiter=False)
        self.params = dict(frames=frames, stride=stride, size=list(self._size) if self._size else None,
                           boundaries=boundaries, null_label=null_label, unlabelled=unlabelled, rate=common)
        self.takes = [p.parent for p in sorted(rgb_root.glob("*/*/*/rgb")) if p.is_dir()]
        if not self.takes:
            raise DataError(f"bimacs: no <subject>/<task>/<take>/rgb folders under {rgb_root}")
        self.take_ids = [t.relative_to(rgb_root).as_posix() for t in self.takes]
        declared, declared_from = declared_fps(take_fps)
        unknown_takes = sorted(set(declared) - set(self.take_ids))
        if unknown_takes:
            raise DataError(f"bimacs: {declared_from} names take {unknown_takes[0]!r}, which is not under {rgb_root}")
        self.take_fps: dict[str, float] = {}  # each take's recording rate, and where it was read
        self.take_fps_source: dict[str, str] = {}
        self._frame_files, self._label_digests, frame_index = [], [], []
        windows, targets = [], []
        for source, take_id in enumerate(self.take_ids):
            files = take_frames(self.takes[source] / "rgb")
            self._resolve_fps(take_id, self.takes[source] / "rgb", declared, declared_from, fps)
            label_path = labels_root / f"{take_id}.json"
            labels = read_labels(label_path, len(files), boundaries)
            self._label_digests.append(hashlib.sha256(label_path.read_bytes()).hexdigest()[:20])
            self._frame_files.append(files)
            if null_label == "idle":
                labels[labels == UNKNOWN] = IDLE
            if unlabelled == "idle":
                labels[labels == UNCOVERED] = IDLE
            index = None if common is None else resample_index(len(files), self.take_fps[take_id], common)
            frame_index.append(index)
            timeline = labels if index is None else labels[index]
            for run_start, run_length in labelled_runs((timeline >= 0).all(axis=1)):
                for offset in window_starts(run_length, frames, stride):
                    start = run_start + offset
                    windows.append((source, start))
                    targets.append(timeline[start : start + frames].reshape(-1).tolist())  # [L0, R0, L1, R1, ...]
        subjects = [t.split("/")[0] for t in self.take_ids]
        self._set_windows(windows, targets, {"take": self.take_ids, "subject": subjects}, frames,
                          frame_index if common is not None else None)
        self._frames_digests: dict[int, str] = {}
        self._fingerprint: str | None = None

    def _resolve_fps(self, take: str, rgb: Path, declared: dict[str, float], declared_from: str, fps: float) -> None:
        recorded = recorded_fps(rgb)
        if recorded is not None and take in declared and declared[take] != recorded:
            raise DataError(f"bimacs: {declared_from} gives take {take} {declared[take]:g} fps but "
                            f"{rgb / 'metadata.csv'} records {recorded:g}")
        if recorded is not None:
            self.take_fps[take], self.take_fps_source[take] = recorded, "metadata.csv"
        elif take in declared:
            self.take_fps[take], self.take_fps_source[take] = declared[take], "take_fps"
        else:
            self.take_fps[take], self.take_fps_source[take] = float(fps), "fps"

    def _frames_digest(self, source: int) -> str:
        """Identity of a take's frames: names and sizes of its image files (reading them all would be slow)."""
        if source not in self._frames_digests:
            base = self.takes[source]
            try:
                entries = [(p.relative_to(base).as_posix(), p.stat().st_size) for p in self._frame_files[source]]
            except OSError as e:
                raise DataError(f"bimacs: cannot read {e.filename}: {e.strerror}") from None
            self._frames_digests[source] = stable_hash(entries, 20)
        return self._frames_digests[source]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            sources = [(t, self._label_digests[i], self._frames_digest(i)) for i, t in enumerate(self.take_ids)]
            body = {**self.params, "sources": stable_hash(sources, 20), "n_sources": len(sources)}
            if self.params["rate"] is not None:  # the recording rates decide which frames a window holds
                body["fps"] = stable_hash(sorted(self.take_fps.items()), 20)
            self._fingerprint = f"bimacs-v{BIMACS_VERSION}:" + json.dumps(body, sort_keys=True)
        return self._fingerprint

    def source_frames(self, source: int) -> np.ndarray:
        files = self._frame_files[source]
        payload = {"take": self.take_ids[source], "frames": self._frames_digest(source), "size": self.params["size"]}
        return cached_array("bimacs", payload, lambda: np.stack([decode_image(f, self._size) for f in files]))

    def describe_source(self, source: int) -> str:
        return f"take {self.takes[source]} ({self.take_fps[self.take_ids[source]]:g} fps)"


@hookimpl
def benchkit_register(registry):
    registry.dataset("bimacs", Bimacs, paths=("root",), task="inverse_dynamics")
