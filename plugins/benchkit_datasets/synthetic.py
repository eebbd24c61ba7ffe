"""``synthetic``: a MUGEN-like 2D world rendered on the fly, the fast default dataset (CPU, seconds).

A sprite moves over a static per-video background, driven by a seeded behaviour policy that holds each intended
move for a few steps. Labels come from the sprite's actual motion by MUGEN's rule (``mugen_rules``), so an
intended move blocked by a wall is labelled by what happened. Actions are visible only as motion between frames:
no single frame tells them apart. Ambiguity is real and occasional: a foreground pillar hides the sprite when it
passes behind it, and pixel noise is added to every frame. Each video is cut into windows of ``frames`` frames with
stride ``frames - 1`` (consecutive windows share a frame), and a window's target is its ``frames - 1`` transition
actions (as the MUGEN reference code derives them, spec invpatch.md §4). Group = video id. Rendered videos are
cached on disk (``<cache>/synthetic/<key>.npz`` with its ``.sha256``) keyed by every parameter; a damaged entry is
moved aside with a one-line warning and rendered again (``benchkit.storage.integrity``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import zipfile
from collections.abc import Sequence

import numpy as np

from benchkit.api import (
    DataError,
    Vocabulary,
    check_file,
    checksum_path,
    default_cache_dir,
    hookimpl,
    quarantine,
    sweep_once,
    write_file,
)
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS

GENERATOR_VERSION = 1
# Intended moves (dx, dy) in MUGEN order, and how often the behaviour policy picks each (MUGEN is imbalanced).
_MOVES = np.array([(0, 0), (1, 0), (-1, 0), (0, 1), (1, 1), (-1, 1), (0, -1)])
_MOVE_P = np.array([0.10, 0.26, 0.18, 0.10, 0.14, 0.10, 0.12])


class SyntheticMoves:
    """A seeded synthetic inverse-dynamics dataset with the 7 MUGEN actions."""

    def __init__(
        self,
        videos: int = 60,
        windows_per_video: int = 4,
        frames: int = 16,
        size: int = 32,
        sprite: int = 4,
        speed: int = 1,
        hold: tuple[int, int] = (2, 6),
        occluders: int = 1,
        noise: float = 6.0,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        if frames < 2 or windows_per_video < 1 or videos < 1:
            raise DataError("synthetic: frames >= 2, windows_per_video >= 1 and videos >= 1 are required")
        if not 1 <= sprite < size // 2:
            raise DataError(f"synthetic: sprite ({sprite}) must be between 1 and size/2 ({size // 2})")
        self.params = dict(videos=videos, windows_per_video=windows_per_video, frames=frames, size=size,
                           sprite=sprite, speed=speed, hold=list(hold), occluders=occluders, noise=noise, seed=seed)
        self.vocabulary = Vocabulary(MUGEN_ACTIONS, delimiter=True)
        self._frames, self._actions = self._load(cache)
        self._window = frames
        self._per_video = windows_per_video

    def fingerprint(self) -> str:
        return f"synthetic-v{GENERATOR_VERSION}:" + json.dumps(self.params, sort_keys=True)

    def __len__(self) -> int:
        return self.params["videos"] * self._per_video

    def _span(self, index: int) -> tuple[int, int]:
        v, w = divmod(index, self._per_video)
        start = w * (self._window - 1)
        return v, start

    def video(self, index: int) -> np.ndarray:
        v, start = self._span(index)
        return self._frames[v, start : start + self._window]

    def targets(self, index: int) -> list[int]:
        v, start = self._span(index)
        return self._actions[v, start : start + self._window - 1].tolist()

    def groups(self, key: str | None = None) -> Sequence[str]:
        if key not in (None, "video"):
            raise DataError(f"synthetic: unknown grouping key {key!r} (available: video)")
        return [f"video-{i // self._per_video:05d}" for i in range(len(self))]

    # -- generation -------------------------------------------------------------------------------------------
    def _load(self, cache: bool) -> tuple[np.ndarray, np.ndarray]:
        digest = hashlib.sha256(self.fingerprint().encode()).hexdigest()[:16]
        path = default_cache_dir() / "synthetic" / f"{digest}.npz"
        if cache:
            sweep_once(path.parent)
        if cache and path.exists():
            reason = check_file(path)
            if reason is None:
                try:
                    with np.load(path, allow_pickle=False) as z:
                        return z["frames"], z["actions"]
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                    reason = f"unreadable: {e}"
            quarantine(path, reason, "rendering it again", drop=[checksum_path(path)])
        frames, actions = self._generate()
        if cache:
            write_file(path, lambda tmp: np.savez(tmp, frames=frames, actions=actions))
        return frames, actions

    def _generate(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        n_frames = p["windows_per_video"] * (p["frames"] - 1) + 1
        rng = np.random.default_rng(p["seed"])
        frames = np.empty((p["videos"], n_frames, p["size"], p["size"], 3), dtype=np.uint8)
        actions = np.empty((p["videos"], n_frames - 1), dtype=np.int64)
        for v in range(p["videos"]):
            frames[v], actions[v] = self._video(rng, n_frames)
        return frames, actions

    def _video(self, rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        from benchkit_datasets._mugen_rules import action_from_motion

        p = self.params
        size, sprite, limit = p["size"], p["sprite"], p["size"] - p["sprite"]
        background = self._background(rng)
        colour = rng.integers(150, 256, size=3)
        pillars = [(int(rng.integers(0, size - sprite)), sprite + 2) for _ in range(p["occluders"])]
        pillar_colour = rng.integers(0, 90, size=3)
        x, y = (int(c) for c in rng.integers(0, limit + 1, size=2))
        move, hold = 0, 0
        positions = [(x, y)]
        for _ in range(n_frames - 1):
            if hold == 0:
                move = int(rng.choice(len(_MOVES), p=_MOVE_P))
                hold = int(rng.integers(p["hold"][0], p["hold"][1] + 1))
            hold -= 1
            dx, dy = _MOVES[move] * p["speed"]
            x, y = int(np.clip(x + dx, 0, limit)), int(np.clip(y + dy, 0, limit))
            positions.append((x, y))
        video = np.empty((n_frames, size, size, 3), dtype=np.uint8)
        for t, (px, py) in enumerate(positions):
            img = background.copy()
            row = limit - py  # world y points up
            img[row : row + sprite, px : px + sprite] = colour
            for left, width in pillars:
                img[:, left : left + width] = pillar_colour
            noisy = img + rng.normal(0.0, p["noise"], size=img.shape) if p["noise"] else img
            video[t] = np.clip(noisy, 0, 255).astype(np.uint8)
        moves = [action_from_motion(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(positions)]
        return video, np.array(moves, dtype=np.int64)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        size = self.params["size"]
        img = np.empty((size, size, 3), dtype=np.float64)
        img[:] = rng.integers(20, 120, size=3)
        for _ in range(4):  # static blocks: texture that does not move, so only the sprite's motion is signal
            x0, y0 = rng.integers(0, size - 4, size=2)
            w, h = rng.integers(2, 8, size=2)
            img[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 140, size=3)
        return img


@hookimpl
def benchkit_register(registry):
    registry.dataset("synthetic", SyntheticMoves, task="inverse_dynamics")
