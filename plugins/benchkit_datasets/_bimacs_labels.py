"""The KIT Bimanual Actions (BIMACS) action list and its per-hand ground-truth format (spec invpatch.md §2, §4).

A take's label file ``<subject>/<task>/<take>.json`` holds ``right_hand`` and ``left_hand``, each a flat list
``[f0, id0, f1, id1, ..., fN]`` of boundary frames and action ids (indices into ``BIMACS_ACTIONS``, or ``null``).

Two rules read it (docs/datasets.md):

- ``half_open`` (the dataset's authors): segment ``i`` is ``[f_i, f_{i+1})``. The authors' Python package ``bimacs``
  (``iterators.walk_segmentation``) ends segment ``i`` at ``f_{i+1} - 1`` and their labelling tool tests
  ``begin <= frame < end``; the tool writes the last boundary as the take's last frame (``frameCount - 1``), so that
  frame lies in no segment.
- ``inclusive`` (InvPatch's ``dataset_preprocessing/bimacs/process_raw_data.py``): segment ``i`` is
  ``[f_i, f_{i+1}]`` and where two segments share a boundary frame the first one wins, so every boundary frame gets
  the earlier segment's action.

``null`` is ``UNKNOWN``: the authors' package maps it to ``"unknown"`` and the tool starts every take as
``[0, null, frameCount - 1]``, so a null segment is a stretch nobody labelled (InvPatch reads it as idle). A frame
that no segment covers is ``UNCOVERED``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from benchkit.api import DataError

BIMACS_ACTIONS: tuple[str, ...] = (
    "idle", "approach", "retreat", "lift", "place", "hold", "pour", "cut", "hammer", "saw", "stir", "screw", "drink",
    "wipe",
)
IDLE, UNCOVERED, UNKNOWN = 0, -1, -2
HANDS: tuple[str, ...] = ("left_hand", "right_hand")  # serialised per frame as [left, right]
BOUNDARIES: tuple[str, ...] = ("half_open", "inclusive")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def hand_labels(flat: list, n_frames: int, path: Path, hand: str, boundaries: str = "half_open") -> np.ndarray:
    """Per-frame action ids ``(n_frames,)`` for one hand: ``UNKNOWN`` in null segments, ``UNCOVERED`` where no
    segment covers the frame."""
    if not isinstance(flat, list) or len(flat) < 3 or len(flat) % 2 == 0:
        raise DataError(f"malformed BIMACS labels {path}: {hand} must be a list [f0, id0, f1, ..., fN] of odd length")
    bounds, ids = flat[0::2], flat[1::2]
    if not all(_is_int(f) and f >= 0 for f in bounds) or any(a > b for a, b in itertools.pairwise(bounds)):
        raise DataError(f"malformed BIMACS labels {path}: {hand} frame numbers must be non-decreasing integers")
    last = len(BIMACS_ACTIONS) - 1
    if not all(i is None or (_is_int(i) and 0 <= i <= last) for i in ids):
        raise DataError(f"malformed BIMACS labels {path}: {hand} action ids must be null or 0..{last}")
    out = np.full(n_frames, UNCOVERED, dtype=np.int64)
    if boundaries == "half_open":  # segments do not overlap: [f_i, f_{i+1})
        for i, action in enumerate(ids):
            out[bounds[i] : min(bounds[i + 1], n_frames)] = UNKNOWN if action is None else action
    else:  # inclusive, painted last to first so that the first segment covering a frame wins
        for i in reversed(range(len(ids))):
            lo, hi = bounds[i], min(bounds[i + 1], n_frames - 1)
            if lo <= hi:
                out[lo : hi + 1] = UNKNOWN if ids[i] is None else ids[i]
    return out


def read_labels(path: Path, n_frames: int, boundaries: str = "half_open") -> np.ndarray:
    """``(n_frames, 2)`` per-frame ``[left, right]`` action ids of one take (``UNKNOWN`` / ``UNCOVERED`` < 0)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"missing BIMACS label file: {path}") from None
    except (OSError, ValueError) as e:
        raise DataError(f"malformed BIMACS labels {path}: {e}") from None
    if not isinstance(data, dict) or any(hand not in data for hand in HANDS):
        raise DataError(f"malformed BIMACS labels {path}: needs both {' and '.join(HANDS)}")
    return np.stack([hand_labels(data[hand], n_frames, path, hand, boundaries) for hand in HANDS], axis=1)
