"""The feature dataset behind every procedural task (spec vedit.md §3; docs/procedural.md).

A ``ProceduralFeatures`` is a list of annotated ``Video``\\ s, a ``Protocol`` that turns them into samples, and a
source of per-video ``(N, E)`` feature series (files on disk, or the synthetic generator's arrays). It meets the
``Dataset`` protocol with ``kind = "features"``: ``video(i)`` is the sample's observed clips ``(C, k, E)`` float32,
to be encoded by the ``precomputed`` backbone.

Grouping keys (``groups(key)``): ``None`` / ``"video"`` (the default; Ego4D: the parent video, so clips of one
video never straddle folds), ``"clip"`` (the annotated video or clip id), ``"task"``, and ``"split"`` (the official
split, ``"train"`` / ``"test"``, for a fixed train/test protocol). ``step_sequences(indices)`` and
``transition_smoothing`` give Viterbi decoding its training transition matrix (``viterbi.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchkit.api import DataError, Vocabulary
from benchkit_datasets._procedural_features import feature_shape, find_feature_file, load_features
from benchkit_datasets._procedural_protocols import Protocol, Video
from benchkit_datasets._video_io import quick_digest

log = logging.getLogger("benchkit")
DATA_VERSION = 1
SUBSETS = ("all", "train", "test")
GROUP_KEYS = ("video", "clip", "task", "split")


@dataclass(frozen=True)
class Names:
    """Class names: steps (forecasting, planning), tasks (classification), verbs and nouns (anticipation)."""

    steps: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()

    def for_task(self, task: str) -> tuple[str, ...]:
        names = {"classification": self.tasks, "anticipation": self.verbs + self.nouns}.get(task, self.steps)
        if not names:
            raise ValueError(f"this dataset has no classes for task {task!r}")
        return names


class ProceduralFeatures:
    """Samples of one procedural task over precomputed per-video features."""

    kind = "features"

    def __init__(
        self,
        name: str,
        videos: list[Video],
        names: Names,
        protocol: Protocol,
        series: Callable[[int], np.ndarray],
        lengths: list[int],
        identity: Callable[[], dict],
        transition_smoothing: float = 0.0,
    ) -> None:
        self.name, self.videos, self.protocol = name, videos, protocol
        self.vocabulary = Vocabulary(names.for_task(protocol.task))
        self.transition_smoothing = transition_smoothing
        self._series, self._identity, self._fingerprint = series, identity, None
        self.samples = protocol.samples(videos, lengths, num_verbs=len(names.verbs))
        if not self.samples:
            raise DataError(f"{name}: no {protocol.task} samples (videos too short for the windows asked for?)")

    def __len__(self) -> int:
        return len(self.samples)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            body = {"protocol": asdict(self.protocol), "data": self._identity(), "version": DATA_VERSION}
            self._fingerprint = f"{self.name}-v{DATA_VERSION}:" + hashlib.sha256(
                json.dumps(body, sort_keys=True).encode()
            ).hexdigest()[:24]
        return self._fingerprint

    def video(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        return self.protocol.observe(sample, self.videos[sample.video], self._series(sample.video))

    def targets(self, index: int) -> list[int]:
        return list(self.samples[index].targets)

    def groups(self, key: str | None = None) -> Sequence[str]:
        key = key or "video"
        if key not in GROUP_KEYS:
            raise DataError(f"{self.name}: unknown grouping key {key!r} (available: {', '.join(GROUP_KEYS)})")
        value = {
            "video": lambda v: v.group_value,
            "clip": lambda v: v.id,
            "task": lambda v: str(v.task),
            "split": lambda v: v.split,
        }[key]
        return [value(self.videos[s.video]) for s in self.samples]

    def step_sequences(self, indices: Sequence[int] | None = None) -> list[list[int]]:
        """The full step-class sequence of every video that the samples ``indices`` (default: all) come from,
        each video once: the counts behind the training transition matrix of Viterbi decoding."""
        chosen = range(len(self.samples)) if indices is None else indices
        videos = sorted({self.samples[i].video for i in chosen})
        return [[s.label for s in self.videos[v].steps] for v in videos]


class FileSeries:
    """Per-video feature files, read on demand; the last few stay in memory (samples come in video order)."""

    def __init__(self, paths: list[Path], key: str | None, keep: int = 8) -> None:
        self.paths, self.key, self.keep = paths, key, keep
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __call__(self, v: int) -> np.ndarray:
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        array = load_features(self.paths[v], self.key)
        self._cache[v] = array
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return array

    def identity(self) -> str:
        h = hashlib.sha256()
        for path in self.paths:
            # [:16]: the fingerprints of stored feature caches stay what they were
            h.update(f"{path.name}:{quick_digest(path, 4096)[:16]};".encode())
        return h.hexdigest()[:24]


def from_feature_files(
    name: str,
    videos: list[Video],
    names: Names,
    protocol: Protocol,
    folder: Path,
    feature_key: str | None,
    subset: str,
    annotations: dict[str, str],
    transition_smoothing: float = 0.0,
) -> ProceduralFeatures:
    """A dataset over ``folder``'s feature files: videos of ``subset`` that have a feature file (the others are
    skipped with a warning, as the reference loaders do); ``annotations`` (file name → hash) join the identity."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    if not folder.is_dir():
        raise DataError(f"{name}: features folder does not exist: {folder}")
    videos = [v for v in videos if subset == "all" or v.split == subset]
    kept, paths, lengths, dims = [], [], [], set()
    for video in videos:
        path = find_feature_file(folder, video.stems or (video.id,), f"the {name} annotations")
        if path is None:
            continue
        shape = feature_shape(path, feature_key)
        if len(shape) != 2 or shape[0] < 1:
            raise DataError(f"{path}: expected an (N, E) array with N >= 1, got shape {shape}")
        dims.add(shape[1])
        if len(dims) > 1:
            raise DataError(f"{path}: feature width {shape[1]} differs from the other videos' {min(dims - {shape[1]})}")
        kept.append(video)
        paths.append(path)
        lengths.append(shape[0])
    if not kept:
        tried = " or ".join(f"{stem}.npy" for stem in (videos[0].stems or (videos[0].id,))) if videos else ""
        example = f"; e.g. {tried}" if tried else ""
        raise DataError(f"{name}: no feature file for any of {len(videos)} videos in {folder}{example} "
                        "(see docs/procedural.md)")
    if len(kept) < len(videos):
        have = {v.id for v in kept}
        missing = [v.id for v in videos if v.id not in have]
        log.warning("%s: %d of %d videos have no feature file in %s (e.g. %s); skipped", name, len(missing),
                    len(videos), folder, missing[0])
    series = FileSeries(paths, feature_key)
    return ProceduralFeatures(
        name, kept, names, protocol, series, lengths,
        identity=lambda: {"annotations": annotations, "features": series.identity(), "subset": subset,
                          "feature_key": feature_key},
        transition_smoothing=transition_smoothing,
    )
