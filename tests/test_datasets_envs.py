"""Episodes recorded live from environments (issue 5): the hold policy, windowing of episodes of any length,
the on-disk episode cache, action subsets, and the real ``atari`` (ale-py) and ``crafter`` plugins on a few short
episodes, checked by replaying the recorded actions through the environment."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from benchkit_datasets._episodes import HoldPolicy, RecordedEpisodes, episode_seed, select_actions

from benchkit.errors import DataError, PluginError


class ScriptedEpisodes(RecordedEpisodes):
    """A stand-in environment: frame t of an episode is filled with t; episodes last ``LENGTHS`` steps in turn."""

    name = "scripted"
    LENGTHS: ClassVar[list[int]] = []

    def __init__(self, **kwargs):
        defaults = dict(episodes=3, steps=10, frames=4, stride=None, labels="transitions", hold=(3, 3),
                        actions=None, seed=0, env_params={}, versions={})
        super().__init__(**{**defaults, **kwargs})

    def action_names(self):
        return ["stay", "up", "down"]

    def record(self, env_seed, policy, steps):
        n = min(steps, self.LENGTHS.pop(0))  # the game ends after n steps
        frames = np.stack([np.full((2, 2, 3), t, np.uint8) for t in range(n + 1)])
        return frames, np.array([policy() for _ in range(n)])


def test_hold_policy_holds_each_draw():
    policy = HoldPolicy([0, 2, 5], (3, 3), np.random.default_rng(0))
    actions = [policy() for _ in range(30)]
    assert set(actions) <= {0, 2, 5}
    assert all(actions[t] == actions[t - 1] for t in range(1, 30) if t % 3)  # changes only every 3 steps
    assert episode_seed(0, 1) == episode_seed(0, 1) != episode_seed(0, 2)


def test_episodes_of_any_length_are_windowed_like_mugen():
    ScriptedEpisodes.LENGTHS = [10, 3, 7]
    ds = ScriptedEpisodes()
    # 11 frames: starts 0, 3, 6 and 7 (end-aligned); 4 frames: 0; 8 frames: 0, 3 and 4
    assert len(ds) == 8
    starts = [int(ds.video(i)[0, 0, 0, 0]) for i in range(len(ds))]
    assert starts == [0, 3, 6, 7, 0, 0, 3, 4]
    assert [ds.video(i)[:, 0, 0, 0].tolist() for i in (0, 3)] == [[0, 1, 2, 3], [7, 8, 9, 10]]
    acts = ds.episode_actions
    assert [len(a) for a in acts] == [10, 3, 7]
    assert ds.targets(3) == acts[0][7:10].tolist() and ds.targets(6) == acts[2][3:6].tolist()
    assert list(ds.groups()) == ["episode-00000"] * 4 + ["episode-00001"] + ["episode-00002"] * 3
    with pytest.raises(DataError, match="unknown grouping key 'video'"):
        ds.groups("video")
    assert ds.vocabulary.actions == ("stay", "up", "down") and not ds.vocabulary.delimiter


def test_recorded_episodes_are_cached_and_reused_across_window_settings():
    ScriptedEpisodes.LENGTHS = [10, 3, 7]
    first = ScriptedEpisodes()
    ScriptedEpisodes.LENGTHS = []  # recording again would fail
    again = ScriptedEpisodes()
    assert [again.targets(i) for i in range(len(again))] == [first.targets(i) for i in range(len(first))]
    per_frame = ScriptedEpisodes(labels="frames")  # one outgoing action per frame: 10, 3 and 7 framed frames
    assert [int(per_frame.video(i)[0, 0, 0, 0]) for i in range(len(per_frame))] == [0, 3, 6, 0, 3]
    assert per_frame.targets(2) == first.episode_actions[0][6:10].tolist()
    assert per_frame.fingerprint() != first.fingerprint()
    ScriptedEpisodes.LENGTHS = [5]
    more = ScriptedEpisodes(episodes=4)  # only the new episode is recorded
    assert len(more.episode_actions[3]) == 5 and ScriptedEpisodes.LENGTHS == []


def test_action_subsets_keep_the_environment_order():
    assert select_actions(["NOOP", "FIRE", "RIGHT", "LEFT"], ["left", "NOOP"], "atari") == [0, 3]
    with pytest.raises(ValueError, match="has no action 'JUMP'"):
        select_actions(["NOOP", "FIRE"], ["JUMP"], "atari")
    with pytest.raises(ValueError, match="at least two distinct actions"):
        select_actions(["NOOP", "FIRE"], ["NOOP", "noop"], "atari")
    ScriptedEpisodes.LENGTHS = [10, 10]
    ds = ScriptedEpisodes(episodes=2, actions=["down", "stay"], seed=1)
    assert ds.vocabulary.actions == ("stay", "down") and ds.choices == [0, 2]
    assert {a for e in ds.episode_actions for a in e.tolist()} <= {0, 1}


def test_atari_labels_replay_to_the_recorded_frames():
    import gymnasium
    from benchkit_datasets._video_io import resize
    from benchkit_datasets.atari import AtariEpisodes

    ds = AtariEpisodes("Pong", episodes=2, steps=40, frames=8, size=32, seed=3)
    assert ds.vocabulary.actions == ("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE")  # minimal set
    assert len(ds) == 2 * 6 and all(len(ds.targets(i)) == 7 for i in range(len(ds)))
    assert ds.video(0).shape == (8, 32, 32, 3)
    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.0)
    for e in range(2):
        obs, _ = env.reset(seed=episode_seed(3, e))
        replay = [resize(obs, (32, 32))]
        for a in ds.episode_actions[e]:
            replay.append(resize(env.step(ds.choices[int(a)])[0], (32, 32)))
        np.testing.assert_array_equal(np.stack(replay), ds.source_frames(e))  # label t leads from frame t to t+1
    subset = AtariEpisodes("Pong", episodes=1, steps=20, frames=8, size=32, actions=["NOOP", "LEFT", "RIGHT"])
    assert subset.vocabulary.actions == ("NOOP", "RIGHT", "LEFT") and subset.choices == [0, 2, 3]


def test_atari_arguments_are_checked(registry):
    resolved = registry.resolve("dataset", "atari", {"game": "Pongg", "episodes": 1, "steps": 5})
    with pytest.raises(PluginError, match="cannot make ALE/Pongg-v5"):
        registry.build("dataset", resolved)
    resolved = registry.resolve("dataset", "atari", {"episodes": 1, "steps": 5, "hold": [3, 2]})
    with pytest.raises(PluginError, match="hold must be"):
        registry.build("dataset", resolved)


def test_crafter_episodes_use_crafters_actions_and_replay():
    import crafter
    from benchkit_datasets.crafter_env import CrafterEpisodes

    ds = CrafterEpisodes(episodes=1, steps=30, frames=6, size=32, seed=2)
    assert ds.vocabulary.actions == tuple(crafter.constants.actions) and len(ds.vocabulary.actions) == 17
    assert ds.vocabulary.actions[0] == "noop"
    frames = ds.source_frames(0)
    assert frames.shape[1:] == (32, 32, 3) and len(frames) == len(ds.episode_actions[0]) + 1 <= 31
    assert all(len(ds.targets(i)) == 5 for i in range(len(ds)))
    # Crafter rebalances creatures every 10 steps in an order that depends on memory addresses, so a replay is
    # exact up to that point (and the recorded episode, cached, is the one every later run sees).
    env = crafter.Env(size=(32, 32), seed=episode_seed(2, 0), length=30)
    replay = [env.reset()] + [env.step(ds.choices[int(a)])[0] for a in ds.episode_actions[0][:9]]
    np.testing.assert_array_equal(np.stack(replay), frames[:10])
