"""``bimacs``: KIT Bimanual Actions (Dreher et al., 2020) takes with per-hand action labels (spec invpatch.md §4).

Layout (the dataset's own, see docs/datasets.md)::

    root/bimacs_rgbd_data/<subject>/<task>/<take>/rgb/chunk_<k>/frame_<n>.png     (jpg and webp work too)
    root/bimacs_rgbd_data_ground_truth/<subject>/<task>/<take>.json

Every take with an ``rgb`` folder is used; its frames must be numbered ``0 .. N-1`` across chunks, and its label
file must exist (``bimacs_labels.py``). Each take is cut into windows of ``frames`` frames with stride
``frames - 1``, the last aligned to the end (``windows.py``); a window's target is per frame ``[left, right]``,
serialised ``L0, R0, L1, R1, ...`` (32 actions for 16 frames). Frames no label segment covers: ``unlabelled="drop"``
(default) leaves out the windows that contain one (the reference has no rule for them: its preprocessing stops
the window there and its loader then fails); ``unlabelled="idle"`` labels them idle. Frames are decoded once with
PyAV, resized to ``size`` and cached per take (``frame_cache.py``). Grouping keys: ``take`` (subject/task/take, the
paper's) and ``subject`` (cross-subject).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from benchkit.config import stable_hash
from benchkit.errors import DataError
from benchkit.hookspecs import hookimpl
from benchkit.vocabulary import Vocabulary
from benchkit_datasets.bimacs_labels import BIMACS_ACTIONS, IDLE, UNLABELLED, read_labels
from benchkit_datasets.frame_cache import cached_array
from benchkit_datasets.video_io import IMAGE_SUFFIXES, decode_image, parse_size
from benchkit_datasets.windows import WindowedVideos, check_window_args, window_starts

BIMACS_VERSION = 1
UNLABELLED_RULES: tuple[str, ...] = ("drop", "idle")
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
        unlabelled: str = "drop",
    ) -> None:
        stride = check_window_args(frames, stride)
        if unlabelled not in UNLABELLED_RULES:
            raise ValueError(f"unlabelled must be one of {', '.join(UNLABELLED_RULES)}, got {unlabelled!r}")
        self._size = parse_size(size)
        root_path = Path(root).expanduser()
        rgb_root, labels_root = root_path / rgb_dir, root_path / labels_dir
        if not rgb_root.is_dir():
            raise DataError(f"bimacs: no RGB folder {rgb_root}")
        self.vocabulary = Vocabulary(BIMACS_ACTIONS, delimiter=False)
        self.params = dict(frames=frames, stride=stride, size=list(self._size) if self._size else None,
                           unlabelled=unlabelled)
        self.takes = [p.parent for p in sorted(rgb_root.glob("*/*/*/rgb")) if p.is_dir()]
        if not self.takes:
            raise DataError(f"bimacs: no <subject>/<task>/<take>/rgb folders under {rgb_root}")
        self.take_ids = [t.relative_to(rgb_root).as_posix() for t in self.takes]
        self._frame_files, self._label_digests = [], []
        windows, targets = [], []
        for source, take_id in enumerate(self.take_ids):
            files = take_frames(self.takes[source] / "rgb")
            label_path = labels_root / f"{take_id}.json"
            labels = read_labels(label_path, len(files))
            self._label_digests.append(hashlib.sha256(label_path.read_bytes()).hexdigest()[:20])
            self._frame_files.append(files)
            if unlabelled == "idle":
                labels[labels == UNLABELLED] = IDLE
            for start in window_starts(len(files), frames, stride):
                window = labels[start : start + frames]
                if (window == UNLABELLED).any():
                    continue
                windows.append((source, start))
                targets.append(window.reshape(-1).tolist())  # [L0, R0, L1, R1, ...]
        subjects = [t.split("/")[0] for t in self.take_ids]
        self._set_windows(windows, targets, {"take": self.take_ids, "subject": subjects}, frames)
        self._frames_digests: dict[int, str] = {}
        self._fingerprint: str | None = None

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
            self._fingerprint = f"bimacs-v{BIMACS_VERSION}:" + json.dumps(
                {**self.params, "sources": stable_hash(sources, 20), "n_sources": len(sources)}, sort_keys=True
            )
        return self._fingerprint

    def source_frames(self, source: int) -> np.ndarray:
        files = self._frame_files[source]
        payload = {"take": self.take_ids[source], "frames": self._frames_digest(source), "size": self.params["size"]}
        return cached_array("bimacs", payload, lambda: np.stack([decode_image(f, self._size) for f in files]))

    def describe_source(self, source: int) -> str:
        return f"take {self.takes[source]}"


@hookimpl
def benchkit_register(registry):
    registry.dataset("bimacs", Bimacs, paths=("root",), task="inverse_dynamics")
