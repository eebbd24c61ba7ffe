"""Windowing shared by the recorded-video datasets (spec invpatch.md §4): cut each source (a clip, a take, an
episode) into windows of ``frames`` frames and expose them through the ``Dataset`` protocol.

Window starts follow the reference's ``create_samples``: ``0, stride, 2 * stride, ...`` while a whole window fits,
then one more window aligned to the end of the source if the last one does not reach it. A source shorter than a
window gives none. The default stride is ``frames - 1`` (consecutive windows share one frame, the reference's
``min_overlap=1``: 16 frames, stride 15).

Action labels come in two kinds:

- per transition (MUGEN, the game environments): ``actions[t]`` is what happened between frame ``t`` and ``t + 1``.
  ``labels="transitions"`` (default, the reference code): a window of T frames carries its T - 1 transitions, all
  visible inside the window. ``labels="frames"`` (the paper's "one action per frame", 16 for 16 frames): each frame
  carries its outgoing transition, so windows are cut from the frames that have one (all but the last) and the
  last action's effect lies in the frame after the window.
- per frame (BIMACS): the dataset builds its own targets; only the window starts are shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from benchkit.errors import DataError
from benchkit.vocabulary import Vocabulary

LABELS: tuple[str, ...] = ("transitions", "frames")


def window_starts(n: int, frames: int, stride: int) -> list[int]:
    """First frame of each window over ``n`` frames (reference ``create_samples``, last window end-aligned)."""
    starts = list(range(0, n - frames + 1, stride)) if n >= frames else []
    if starts and starts[-1] + frames < n:
        starts.append(n - frames)
    return starts


def check_window_args(frames: int, stride: int | None, labels: str | None = None) -> int:
    """Validate the window arguments (``ValueError``: a configuration mistake) and return the stride."""
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    stride = frames - 1 if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if labels is not None and labels not in LABELS:
        raise ValueError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    return stride


def transition_windows(
    actions: Sequence[np.ndarray], frames: int, stride: int, labels: str
) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """Windows ``(source, start)`` and their targets for sources with per-transition actions.

    Source ``s`` has ``len(actions[s]) + 1`` frames.
    """
    windows, targets = [], []
    per_window = frames - 1 if labels == "transitions" else frames
    for s, acts in enumerate(actions):
        usable = len(acts) + 1 if labels == "transitions" else len(acts)
        for start in window_starts(usable, frames, stride):
            windows.append((s, start))
            targets.append([int(a) for a in acts[start : start + per_window]])
    return windows, targets


class WindowedVideos:
    """The ``Dataset`` protocol over windows of sources; subclasses provide ``source_frames`` and a fingerprint.

    ``groups``: grouping key → one value per source; the first key is the default.
    """

    vocabulary: Vocabulary
    name = "dataset"

    def _set_windows(
        self,
        windows: list[tuple[int, int]],
        targets: list[list[int]],
        groups: Mapping[str, Sequence[str]],
        frames: int,
    ) -> None:
        self._windows, self._targets, self._groups, self._frames = windows, targets, dict(groups), frames
        self._open: tuple[int, np.ndarray] | None = None  # the last source read (consecutive windows share it)

    def source_frames(self, source: int) -> np.ndarray:
        """All frames of one source, ``(F, H, W, 3)`` uint8 (memory-mapped)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._windows)

    def video(self, index: int) -> np.ndarray:
        source, start = self._windows[index]
        if self._open is None or self._open[0] != source:
            self._open = (source, self.source_frames(source))
        clip = self._open[1][start : start + self._frames]
        if len(clip) != self._frames:
            raise DataError(f"{self.name}: {self.describe_source(source)} has fewer frames than its labels say")
        return np.ascontiguousarray(clip)

    def targets(self, index: int) -> list[int]:
        return list(self._targets[index])

    def groups(self, key: str | None = None) -> Sequence[str]:
        key = key or next(iter(self._groups))
        if key not in self._groups:
            raise DataError(f"{self.name}: unknown grouping key {key!r} (available: {', '.join(self._groups)})")
        values = self._groups[key]
        return [values[source] for source, _ in self._windows]

    def describe_source(self, source: int) -> str:
        return f"source {source}"
