"""Episodes recorded live from a game environment, cached on disk and cut into windows (issue 5).

Shared by ``crafter`` and ``atari``. A seeded behaviour policy draws an action uniformly from the allowed ones and
holds it for a number of steps drawn uniformly from ``hold`` (so that motion builds up and is visible). Episode
``e`` starts from the environment seed and the policy seed derived from ``(seed, e)`` and lasts ``steps``
transitions or until the game ends; its ``n + 1`` observations and ``n`` actions (``actions[t]`` taken at frame
``t``, leading to frame ``t + 1``) are stored under ``<cache>/datasets/<env>/`` keyed by every parameter and the
library versions, so each episode is recorded once and adding episodes keeps the old ones. Frames and labels are
windowed like MUGEN (``windows.transition_windows``); the grouping key is the episode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchkit.api import Vocabulary
from benchkit_datasets._frame_cache import cache_path, load_array, save_array
from benchkit_datasets._windows import WindowedVideos, check_window_args, transition_windows

RECORDER_VERSION = 1


def episode_seed(seed: int, episode: int) -> int:
    """A 31-bit environment seed for episode ``episode`` of a dataset seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0] >> 1)


class HoldPolicy:
    """Uniform over ``choices`` (environment action ids), each draw held for ``hold[0]..hold[1]`` steps."""

    def __init__(self, choices: Sequence[int], hold: Sequence[int], rng: np.random.Generator) -> None:
        self.choices, self.hold, self.rng = list(choices), (int(hold[0]), int(hold[1])), rng
        self._action, self._left = 0, 0

    def __call__(self) -> int:
        if self._left == 0:
            self._action = self.choices[int(self.rng.integers(len(self.choices)))]
            self._left = int(self.rng.integers(self.hold[0], self.hold[1] + 1))
        self._left -= 1
        return self._action


def select_actions(available: Sequence[str], wanted: Sequence[str] | None, env: str) -> list[int]:
    """Indices (in the environment's order) of the actions the policy may take; all when ``wanted`` is None."""
    if wanted is None:
        return list(range(len(available)))
    lookup = {a.lower(): i for i, a in enumerate(available)}
    unknown = [w for w in wanted if w.lower() not in lookup]
    if unknown:
        raise ValueError(f"{env} has no action {unknown[0]!r} (actions: {', '.join(available)})")
    chosen = sorted({lookup[w.lower()] for w in wanted})
    if len(chosen) < 2:
        raise ValueError(f"at least two distinct actions are needed, got {list(wanted)}")
    return chosen


class RecordedEpisodes(WindowedVideos):
    """Base of the environment datasets; subclasses set ``name``, ``action_names`` and implement ``record``."""

    name = "episodes"

    def __init__(
        self,
        *,
        episodes: int,
        steps: int,
        frames: int,
        stride: int | None,
        labels: str,
        hold: Sequence[int],
        actions: Sequence[str] | None,
        seed: int,
        env_params: dict[str, Any],
        versions: dict[str, str],
    ) -> None:
        stride = check_window_args(frames, stride, labels)
        if episodes < 1 or steps < 1:
            raise ValueError(f"episodes and steps must be >= 1, got {episodes} and {steps}")
        if len(hold) != 2 or not 1 <= hold[0] <= hold[1]:
            raise ValueError(f"hold must be [min, max] with 1 <= min <= max, got {list(hold)}")
        names = self.action_names()
        self.choices = select_actions(names, actions, self.name)
        self.vocabulary = Vocabulary(tuple(names[i] for i in self.choices), delimiter=False)
        self.params = dict(
            episodes=episodes, steps=steps, frames=frames, stride=stride, labels=labels, hold=[int(h) for h in hold],
            actions=list(self.vocabulary.actions), seed=seed, **env_params,
        )
        self._identity = {"plugin": self.name, "recorder": RECORDER_VERSION, "versions": versions}
        record_params = {k: v for k, v in self.params.items() if k not in ("episodes", "frames", "stride", "labels")}
        self._episode_frames: list[np.ndarray] = []
        episode_actions = []
        to_label = {a: i for i, a in enumerate(self.choices)}
        for e in range(episodes):
            obs, acts = self._load_or_record(e, record_params)
            self._episode_frames.append(obs)
            episode_actions.append(np.array([to_label[int(a)] for a in acts], dtype=np.int64))
        self.episode_actions = episode_actions  # per episode, label indices (``self.choices`` maps them to the env's)
        windows, targets = transition_windows(episode_actions, frames, stride, labels)
        self._set_windows(windows, targets, {"episode": [f"episode-{e:05d}" for e in range(episodes)]}, frames)

    # -- to implement -------------------------------------------------------------------------------------------
    def action_names(self) -> list[str]:
        """The environment's own action meanings, in its order."""
        raise NotImplementedError

    def record(self, env_seed: int, policy: HoldPolicy, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Play one episode: observations ``(n + 1, H, W, 3)`` uint8 and environment action ids ``(n,)``."""
        raise NotImplementedError

    # -- protocol ----------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        return f"{self.name}:" + json.dumps({**self._identity, **self.params}, sort_keys=True)

    def source_frames(self, source: int) -> np.ndarray:
        return self._episode_frames[source]

    def describe_source(self, source: int) -> str:
        return f"episode {source}"

    # -- recording ---------------------------------------------------------------------------------------------
    def _load_or_record(self, episode: int, record_params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        payload = {**self._identity, **record_params, "episode": episode}
        paths = {part: cache_path(self.name, {**payload, "part": part}) for part in ("frames", "actions")}
        frames, actions = load_array(paths["frames"]), load_array(paths["actions"])
        if frames is None or actions is None or len(frames) != len(actions) + 1:
            env_seed = episode_seed(self.params["seed"], episode)
            policy = HoldPolicy(self.choices, self.params["hold"], np.random.default_rng([env_seed, 1]))
            frames, actions = self.record(env_seed, policy, self.params["steps"])
            save_array(paths["actions"], actions.astype(np.int64))
            save_array(paths["frames"], frames.astype(np.uint8))
            frames, actions = load_array(paths["frames"]), load_array(paths["actions"])
        return frames, np.asarray(actions)
