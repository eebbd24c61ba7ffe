"""The KIT Bimanual Actions (BIMACS) action list and its per-hand ground-truth format (spec invpatch.md §2, §4).

A take's label file ``<subject>/<task>/<take>.json`` holds ``right_hand`` and ``left_hand``, each a flat list
``[f0, id0, f1, id1, ..., fN]``: segment ``i`` covers frames ``f_i .. f_{i+1}`` inclusive with action ``id_i``
(an index into ``BIMACS_ACTIONS``); where segments share a boundary frame the first one wins; ``null`` is idle.
A frame no segment covers is unlabelled (``UNLABELLED``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from benchkit.errors import DataError

BIMACS_ACTIONS: tuple[str, ...] = (
    "idle", "approach", "retreat", "lift", "place", "hold", "pour", "cut", "hammer", "saw", "stir", "screw", "drink",
    "wipe",
)
IDLE, UNLABELLED = 0, -1
HANDS: tuple[str, ...] = ("left_hand", "right_hand")  # serialised per frame as [left, right]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def hand_labels(flat: list, n_frames: int, path: Path, hand: str) -> np.ndarray:
    """Per-frame action ids ``(n_frames,)`` for one hand; ``UNLABELLED`` where no segment covers the frame."""
    if not isinstance(flat, list) or len(flat) < 3 or len(flat) % 2 == 0:
        raise DataError(f"malformed BIMACS labels {path}: {hand} must be a list [f0, id0, f1, ..., fN] of odd length")
    bounds, ids = flat[0::2], flat[1::2]
    if not all(_is_int(f) and f >= 0 for f in bounds) or any(a > b for a, b in itertools.pairwise(bounds)):
        raise DataError(f"malformed BIMACS labels {path}: {hand} frame numbers must be non-decreasing integers")
    last = len(BIMACS_ACTIONS) - 1
    if not all(i is None or (_is_int(i) and 0 <= i <= last) for i in ids):
        raise DataError(f"malformed BIMACS labels {path}: {hand} action ids must be null or 0..{last}")
    out = np.full(n_frames, UNLABELLED, dtype=np.int64)
    for i in reversed(range(len(ids))):  # painted last to first, so the first covering segment wins
        lo, hi = bounds[i], min(bounds[i + 1], n_frames - 1)
        if lo <= hi:
            out[lo : hi + 1] = IDLE if ids[i] is None else ids[i]
    return out


def read_labels(path: Path, n_frames: int) -> np.ndarray:
    """``(n_frames, 2)`` per-frame ``[left, right]`` action ids of one take."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"missing BIMACS label file: {path}") from None
    except (OSError, ValueError) as e:
        raise DataError(f"malformed BIMACS labels {path}: {e}") from None
    if not isinstance(data, dict) or any(hand not in data for hand in HANDS):
        raise DataError(f"malformed BIMACS labels {path}: needs both {' and '.join(HANDS)}")
    return np.stack([hand_labels(data[hand], n_frames, path, hand) for hand in HANDS], axis=1)
