"""The procedural task protocols (spec vedit.md §3): annotated videos in, samples (observed clips, targets) out.

Every procedural dataset, real or synthetic, describes its videos the same way (``Video``: ordered ``Step``\\ s with
start / end seconds) and shares these rules, so a window means the same thing on COIN and on the synthetic data:

- ``forecasting`` (COIN step forecasting): one sample per step ``j >= 1``; observed: ``[max(0, s_j - history),
  s_j]`` (everything seen before step ``j`` starts, at most ``history`` seconds) cut into ``clips`` equal clips;
  target: step ``j``'s class (n = 1).
- ``classification`` (COIN task classification): one sample per video; observed: the annotated procedure
  ``[first start, last end]`` cut into ``clips`` clips; target: the task (n = 1).
- ``planning`` (SCHEMA): every window of ``horizon`` consecutive steps; observed: the start state of its first
  step and the end state of its last (C = 2 clips of one token, each the mean of the features over ``[t - r, t + r]``
  with ``t`` the second, floored, r = ``state_radius``); target: the ``horizon`` classes. As SCHEMA, a window with a
  step starting before the features or ending at or after their last second is dropped.
- ``anticipation`` (Ego4D LTA): every window of ``observed`` consecutive actions followed by ``z`` more; observed:
  each of the ``observed`` actions' own spans (C = ``observed``); target: the next ``z`` (verb, noun) pairs
  interleaved over one vocabulary, verbs first then nouns: ``[v_0, V + n_0, v_1, V + n_1, ...]`` with V the
  number of verbs (even positions are verbs, odd positions nouns offset by V).

A clip's ``tokens`` tokens are the means of ``tokens`` equal sub-spans (``procedural_features.pool_span``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from benchkit_datasets._procedural_features import pool_span, state_feature

TASKS = ("forecasting", "classification", "planning", "anticipation")


@dataclass(frozen=True)
class Step:
    label: int  # class in the step vocabulary (0-based)
    start: float  # seconds
    end: float
    verb: int = -1  # for anticipation: the (verb, noun) pair of the action
    noun: int = -1


@dataclass(frozen=True)
class Video:
    id: str
    task: int
    steps: tuple[Step, ...]
    split: str = "train"  # official split: "train" or "test"
    group: str = ""  # grouping value for cross-validation; default: the id
    stems: tuple[str, ...] = ()  # feature-file stems tried in order; default: the id
    offset: float = 0.0  # seconds added to annotation times to index the feature file

    @property
    def group_value(self) -> str:
        return self.group or self.id


@dataclass(frozen=True)
class Sample:
    video: int  # index into the dataset's videos
    targets: tuple[int, ...]
    spans: tuple[tuple[float, float], ...] = ()  # seconds; each one clip of `tokens` tokens
    states: tuple[float, ...] = ()  # seconds; each one clip of a single state token (planning)


@dataclass(frozen=True)
class Protocol:
    """The task and its window options; see the module docstring for what each means."""

    task: str = "forecasting"
    history: float = 68.0
    clips: int = 8
    tokens: int = 1
    horizon: int = 3
    observed: int = 4
    z: int = 20
    fps: float = 1.0
    state_radius: int = 1

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        for name in ("clips", "tokens", "horizon", "observed", "z"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.history <= 0 or self.fps <= 0 or self.state_radius < 0:
            raise ValueError("history and fps must be > 0 and state_radius >= 0")

    def samples(self, videos: list[Video], lengths: list[int], num_verbs: int = 0) -> list[Sample]:
        """Every sample of every video, in video order; ``lengths`` = feature steps per video."""
        make, out = getattr(self, f"_{self.task}"), []
        for v, (video, n) in enumerate(zip(videos, lengths, strict=True)):
            out.extend(make(v, video, n, num_verbs))
        return out

    def _cut(self, start: float, end: float) -> tuple[tuple[float, float], ...]:
        edges = np.linspace(start, max(start, end), self.clips + 1)
        return tuple((float(a), float(b)) for a, b in itertools.pairwise(edges))

    def _forecasting(self, v: int, video: Video, n: int, _: int) -> list[Sample]:
        return [
            Sample(v, (step.label,), spans=self._cut(max(0.0, step.start - self.history), step.start))
            for step in video.steps[1:]
        ]

    def _classification(self, v: int, video: Video, n: int, _: int) -> list[Sample]:
        if not video.steps:
            return []
        end = max(s.end for s in video.steps)
        return [Sample(v, (video.task,), spans=self._cut(video.steps[0].start, end))]

    def _planning(self, v: int, video: Video, n: int, _: int) -> list[Sample]:
        out, t = [], self.horizon
        for i in range(len(video.steps) - t + 1):
            window = video.steps[i : i + t]
            if any(self.index(s.start, video) < 0 or self.index(s.end, video) >= n for s in window):
                continue
            out.append(Sample(v, tuple(s.label for s in window), states=(window[0].start, window[-1].end)))
        return out

    def _anticipation(self, v: int, video: Video, n: int, num_verbs: int) -> list[Sample]:
        out, o = [], self.observed
        for i in range(len(video.steps) - o - self.z + 1):
            seen, future = video.steps[i : i + o], video.steps[i + o : i + o + self.z]
            targets = tuple(c for s in future for c in (s.verb, num_verbs + s.noun))
            out.append(Sample(v, targets, spans=tuple((s.start, s.end) for s in seen)))
        return out

    def index(self, seconds: float, video: Video) -> int:
        """The feature step holding ``seconds`` (floored, as SCHEMA's ``int()`` on whole seconds)."""
        return math.floor((seconds + video.offset) * self.fps)

    def observe(self, sample: Sample, video: Video, series: np.ndarray) -> np.ndarray:
        """``(C, k, E)`` float32: the sample's observed clips."""
        if sample.states:
            return np.stack(
                [state_feature(series, self.index(t, video), self.state_radius)[None] for t in sample.states]
            ).astype(np.float32)
        off, fps = video.offset, self.fps
        return np.stack([pool_span(series, (a + off) * fps, (b + off) * fps, self.tokens) for a, b in sample.spans])

    @property
    def clip_shape(self) -> tuple[int, int]:
        """``(C, k)`` of every sample."""
        if self.task == "planning":
            return 2, 1
        return (self.observed if self.task == "anticipation" else self.clips), self.tokens
