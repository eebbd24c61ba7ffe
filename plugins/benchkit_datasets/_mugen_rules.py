"""MUGEN's action vocabulary and the reference rule that derives an action from an agent's motion.

Spec invpatch.md §4: from consecutive frames' agent positions (y up), in this order: ``dy > 0``: ``dx == 0`` →
jump, ``dx > 0`` → jump_right, ``dx < 0`` → jump_left; ``dy < 0`` → descend; ``dx > 0`` → move_right;
``dx < 0`` → move_left; else inaction.
"""

from __future__ import annotations

MUGEN_ACTIONS: tuple[str, ...] = ("inaction", "move_right", "move_left", "jump", "jump_right", "jump_left", "descend")
INACTION, MOVE_RIGHT, MOVE_LEFT, JUMP, JUMP_RIGHT, JUMP_LEFT, DESCEND = range(7)


def action_from_motion(dx: float, dy: float) -> int:
    if dy > 0:
        return JUMP if dx == 0 else JUMP_RIGHT if dx > 0 else JUMP_LEFT
    if dy < 0:
        return DESCEND
    if dx > 0:
        return MOVE_RIGHT
    if dx < 0:
        return MOVE_LEFT
    return INACTION
