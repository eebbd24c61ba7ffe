"""``crafter``: inverse dynamics on episodes recorded live from Crafter (Hafner, 2021), a world benchkit did not write.

Each episode is a fresh world (``crafter.Env(seed=...)`` per episode), played by the seeded hold policy of
``episodes.py`` for ``steps`` steps or until the player dies. Crafter renders the egocentric 9x9 view itself at
``size`` pixels (64 by default, its own default), so frames are not resized again. The vocabulary is Crafter's own
action list (``crafter.constants.actions``, 17 actions in the environment's order), or the subset named in
``actions``. Honest ambiguity: many actions change nothing in most states (``noop``, a ``place_*`` or ``make_*``
without the materials, a move into an obstacle the player already faces), and the label is always the action
taken. Windows and labels as in MUGEN (spec invpatch.md §4); group = episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

import numpy as np

from benchkit.api import hookimpl
from benchkit_datasets._episodes import HoldPolicy, RecordedEpisodes


def _crafter():
    try:
        import crafter
    except ImportError:  # pragma: no cover - the `envs` extra is part of `dev`
        raise ValueError("the crafter package is not installed (pip install 'benchkit[envs]')") from None
    return crafter


class CrafterEpisodes(RecordedEpisodes):
    """Crafter episodes under a seeded hold policy, cut into windows with their action sequences."""

    name = "crafter"

    def __init__(
        self,
        episodes: int = 20,
        steps: int = 200,
        frames: int = 16,
        stride: int | None = None,
        labels: str = "transitions",
        size: int = 64,
        hold: Sequence[int] = (2, 6),
        actions: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if size < 9:
            raise ValueError(f"size must be >= 9 (one pixel per tile of the 9x9 view), got {size}")
        _crafter()
        super().__init__(
            episodes=episodes, steps=steps, frames=frames, stride=stride, labels=labels, hold=hold,
            actions=actions, seed=seed, env_params={"size": int(size)},
            versions={"crafter": metadata.version("crafter")},
        )

    def action_names(self) -> list[str]:
        return list(_crafter().constants.actions)

    def record(self, env_seed: int, policy: HoldPolicy, steps: int) -> tuple[np.ndarray, np.ndarray]:
        size = self.params["size"]
        env = _crafter().Env(size=(size, size), seed=env_seed, length=steps)
        observations, actions = [env.reset()], []
        for _ in range(steps):
            action = policy()
            obs, _reward, done, _info = env.step(action)
            observations.append(obs)
            actions.append(action)
            if done:
                break
        return np.stack(observations), np.array(actions, dtype=np.int64)


@hookimpl
def benchkit_register(registry):
    registry.dataset("crafter", CrafterEpisodes, task="inverse_dynamics")
