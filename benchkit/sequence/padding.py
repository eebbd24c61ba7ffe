"""Sequence helpers shared by metrics and reports: the padding rule and interleaved streams.

``select_part`` picks the positions of one stream out of an interleaved serialisation: BIMACS hands are written
``[L0, R0, L1, R1, ...]`` (spec invpatch.md §2), Ego4D LTA targets ``[v0, n0, v1, n1, ...]`` (spec vedit.md §3).
``even`` keeps positions 0, 2, 4, ... (left hand, verbs), ``odd`` keeps 1, 3, 5, ... (right hand, nouns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchkit.sequence.vocabulary import PAD_CLASS

PARTS: tuple[str, ...] = ("all", "even", "odd")


def select_part(sequence: Sequence[Any], part: str = "all") -> list[Any]:
    """The positions of ``sequence`` that belong to ``part`` (one of ``PARTS``), in order."""
    if part == "all":
        return list(sequence)
    if part == "even":
        return list(sequence[0::2])
    if part == "odd":
        return list(sequence[1::2])
    raise ValueError(f"part must be one of {', '.join(PARTS)}, not {part!r}")


def pad_pair(hyp: Sequence[int], ref: Sequence[int]) -> tuple[list[int], list[int]]:
    """The reference's padding rule (spec invpatch.md §5): the shorter of hypothesis and reference is right-padded
    with the padding class, so a missing or extra token is a wrong position."""
    n = max(len(hyp), len(ref))
    return list(hyp) + [PAD_CLASS] * (n - len(hyp)), list(ref) + [PAD_CLASS] * (n - len(ref))
