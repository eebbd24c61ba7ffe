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
- per frame (BIMACS): the dataset builds its own targets; only the window starts are shared. A source may be
  resampled to a common frame rate (``resample_index``: window frame ``k`` is source frame ``index[k]``), and frames
  without a usable label split it into stretches that are each cut on their own (``labelled_runs``), so that no
  window touches such a frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from benchkit.api import DataError, Vocabulary

LABELS: tuple[str, ...] = ("transitions", "frames")


def window_starts(n: int, frames: int, stride: int) -> list[int]:
    """First frame of each window over ``n`` frames (reference ``create_samples``, last window end-aligned)."""
    starts = list(range(0, n - frames + 1, stride)) if n >= frames else []
    if starts and starts[-1] + frames < n:
        starts.append(n - frames)
    return starts


def resample_index(n: int, fps: float, rate: float) -> np.ndarray:
    """Source frame of each frame of an ``n``-frame source recorded at ``fps``, resampled to ``rate`` frames per
    second: frame ``k`` (time ``k / rate``) is the last source frame at or before that time, ``floor(k * fps /
    rate)``. Down-sampling keeps every ``fps / rate``-th frame; up-sampling repeats frames."""
    count = int(np.floor((n - 1) * rate / fps + 1e-9)) + 1 if n else 0
    return np.minimum(np.floor(np.arange(count) * fps / rate + 1e-9).astype(np.int64), max(n - 1, 0))


def labelled_runs(usable: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` of every maximal stretch of ``True`` in ``usable``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], usable.astype(np.int8), [0]])))
    return [(int(a), int(b - a)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


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
        frame_index: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        """``frame_index[source]``: the source frame behind each window frame (``resample_index``), or ``None``
        where windows index the source's own frames."""
        self._windows, self._targets, self._groups, self._frames = windows, targets, dict(groups), frames
        self._frame_index = frame_index
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
        resampled = self._frame_index[source] if self._frame_index is not None else None
        frames = self._open[1]
        if resampled is None:
            clip = frames[start : start + self._frames]
        else:
            picked = resampled[start : start + self._frames]
            clip = frames[picked] if len(picked) and picked[-1] < len(frames) else frames[:0]
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
