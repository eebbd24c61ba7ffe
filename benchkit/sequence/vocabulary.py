"""Action vocabularies with the reference's special tokens (spec invpatch.md §2).

Layout: PAD 0, BOS 1, actions ``2 .. A+1``, an optional (unused) delimiter, EOS last. MUGEN in the reference has
the delimiter (vocab 11); BIMACS does not (vocab 17).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAD, BOS = 0, 1
PAD_CLASS = -1  # the class of padding positions in the accuracy rule (= a generated PAD token)


def special_class(token: int) -> int:
    """A generated non-action token as a (negative) class id: PAD → -1 = ``PAD_CLASS``, BOS → -2, ..."""
    return -1 - token


def until_eos(row: Sequence[int], eos: int) -> list[int]:
    """Generated token ids up to and including the first ``eos`` (all of them when there is none)."""
    row = list(row)
    return row[: row.index(eos) + 1] if eos in row else row


@dataclass(frozen=True)
class Vocabulary:
    actions: tuple[str, ...]
    delimiter: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(self.actions))

    @property
    def eos(self) -> int:
        return len(self.actions) + 2 + int(self.delimiter)

    @property
    def size(self) -> int:
        return self.eos + 1

    def encode(self, actions: Sequence[int], length: int) -> list[int]:
        """``[BOS, a_1 + 2, ..., a_L + 2, EOS]`` right-padded with PAD to ``length``."""
        tokens = [BOS, *(a + 2 for a in actions), self.eos]
        if len(tokens) > length:
            raise ValueError(f"sequence of {len(actions)} actions does not fit in {length} tokens")
        return tokens + [PAD] * (length - len(tokens))

    def class_name(self, index: int) -> str:
        """Action index → its name; a special class (negative, see ``decode``) → ``<pad>``, ``<bos>``, ``<sep>``."""
        if index >= 0:
            return self.actions[index]
        return {special_class(PAD): "<pad>", special_class(BOS): "<bos>"}.get(
            index, "<sep>" if self.delimiter and index == special_class(self.eos - 1) else f"<{index}>"
        )

    def decode(self, tokens: Sequence[int]) -> list[int]:
        """Generated token ids → action indices, as the reference does: drop one leading BOS, stop at EOS.

        Any other non-action token (PAD, BOS, delimiter) stays in the sequence as ``special_class(token)``, as the
        reference keeps its name in the text: a generated PAD then equals the padding class of the accuracy rule.
        """
        tokens = list(tokens)
        if tokens and tokens[0] == BOS:
            tokens = tokens[1:]
        out: list[int] = []
        for t in tokens:
            if t == self.eos:
                break
            out.append(t - 2 if 2 <= t < 2 + len(self.actions) else special_class(t))
        return out
