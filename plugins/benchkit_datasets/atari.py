"""``atari``: inverse dynamics on episodes recorded live from the Arcade Learning Environment (ale-py + gymnasium).

``game`` is an ALE game name (``Pong``, ``Breakout``, ...; played as ``ALE/<game>-v5``) or a full gymnasium id.
Sticky actions are off by default (``repeat_action_probability=0.0``; the v5 default of 0.25 would make the label
differ from what was executed a quarter of the time); ``frameskip`` (default 4, v5's) repeats each action for that
many emulator frames so that one step has a visible effect. The vocabulary is the game's minimal action set in
``get_action_meanings()`` order (``full_action_space=True`` for all 18), or the subset named in ``actions``.
Observations (210x160 RGB) are resized once to ``size`` (default 84, the DQN convention) by
``video_io.resize``. Episodes follow the seeded hold policy of ``episodes.py``; windows and labels as in MUGEN
(spec invpatch.md §4); group = episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

import numpy as np

from benchkit.api import hookimpl
from benchkit_datasets._episodes import HoldPolicy, RecordedEpisodes
from benchkit_datasets._video_io import parse_size, resize


def gym_id(game: str) -> str:
    """``Pong`` → ``ALE/Pong-v5``; a full id (with a ``/`` or a ``-v<N>`` suffix) is kept as given."""
    return game if "/" in game or "-v" in game else f"ALE/{game}-v5"


class AtariEpisodes(RecordedEpisodes):
    """ALE episodes under a seeded hold policy, cut into windows with their action sequences."""

    name = "atari"

    def __init__(
        self,
        game: str = "Pong",
        episodes: int = 20,
        steps: int = 200,
        frames: int = 16,
        stride: int | None = None,
        labels: str = "transitions",
        size: int | Sequence[int] = 84,
        frameskip: int = 4,
        repeat_action_probability: float = 0.0,
        full_action_space: bool = False,
        hold: Sequence[int] = (2, 6),
        actions: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if frameskip < 1 or not 0.0 <= repeat_action_probability <= 1.0:
            raise ValueError("frameskip must be >= 1 and repeat_action_probability in [0, 1]")
        self._size = parse_size(size)
        self._env = self._make(gym_id(game), frameskip, repeat_action_probability, full_action_space)
        super().__init__(
            episodes=episodes, steps=steps, frames=frames, stride=stride, labels=labels, hold=hold,
            actions=actions, seed=seed,
            env_params={
                "game": gym_id(game), "size": list(self._size) if self._size else None, "frameskip": frameskip,
                "repeat_action_probability": float(repeat_action_probability),
                "full_action_space": bool(full_action_space),
            },
            versions={"ale-py": metadata.version("ale-py"), "gymnasium": metadata.version("gymnasium")},
        )
        self._env.close()  # every episode is recorded (or cached) by now; keep the dataset light to pass around
        self._env = None

    @staticmethod
    def _make(env_id: str, frameskip: int, sticky: float, full_action_space: bool):
        try:
            import ale_py
            import gymnasium
        except ImportError:  # pragma: no cover - the `envs` extra is part of `dev`
            raise ValueError("ale-py and gymnasium are not installed (pip install 'benchkit[envs]')") from None
        gymnasium.register_envs(ale_py)
        try:
            return gymnasium.make(
                env_id, frameskip=frameskip, repeat_action_probability=sticky, full_action_space=full_action_space
            )
        except gymnasium.error.Error as e:
            raise ValueError(f"cannot make {env_id}: {e}") from None

    def action_names(self) -> list[str]:
        return list(self._env.unwrapped.get_action_meanings())

    def record(self, env_seed: int, policy: HoldPolicy, steps: int) -> tuple[np.ndarray, np.ndarray]:
        obs, _ = self._env.reset(seed=env_seed)
        observations, actions = [resize(obs, self._size)], []
        for _ in range(steps):
            action = policy()
            obs, _reward, terminated, truncated, _info = self._env.step(action)
            observations.append(resize(obs, self._size))
            actions.append(action)
            if terminated or truncated:
                break
        return np.stack(observations), np.array(actions, dtype=np.int64)


@hookimpl
def benchkit_register(registry):
    registry.dataset("atari", AtariEpisodes, task="inverse_dynamics")
