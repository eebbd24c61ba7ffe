from __future__ import annotations

import numpy as np
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS, action_from_motion
from benchkit_datasets.synthetic import SyntheticMoves


def test_mugen_rule_order():
    names = [MUGEN_ACTIONS[action_from_motion(dx, dy)] for dx, dy in
             [(0, 1), (2, 1), (-2, 1), (3, -1), (1, 0), (-1, 0), (0, 0)]]
    assert names == ["jump", "jump_right", "jump_left", "descend", "move_right", "move_left", "inaction"]


def test_windows_share_a_frame_and_labels_follow_motion():
    ds = SyntheticMoves(videos=2, windows_per_video=3, frames=5, size=16, sprite=3, noise=0.0, occluders=0)
    assert len(ds) == 6 and len(ds.targets(0)) == 4 and ds.video(0).shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(ds.video(0)[-1], ds.video(1)[0])
    assert ds.groups()[:3] == ["video-00000"] * 3 and ds.groups()[3] == "video-00001"
    for i in range(len(ds)):  # without noise or occluders, a still sprite means identical frames
        v = ds.video(i).astype(int)
        for t, a in enumerate(ds.targets(i)):
            still = not np.abs(v[t + 1] - v[t]).any()
            assert still == (MUGEN_ACTIONS[a] == "inaction")


def test_deterministic_and_cached():
    a = SyntheticMoves(videos=2, frames=4, size=16, sprite=3)
    b = SyntheticMoves(videos=2, frames=4, size=16, sprite=3, cache=False)
    np.testing.assert_array_equal(a.video(3), b.video(3))
    assert a.targets(3) == b.targets(3) and a.fingerprint() == b.fingerprint()
    assert SyntheticMoves(videos=2, frames=4, size=16, sprite=3, seed=1).fingerprint() != a.fingerprint()
