"""How InvPatch's reference evaluation reads a generated sequence back from its text (``reference_text: true``).

The reference scores strings, not token ids (``models/model.py`` ``decode`` and ``__format_text``,
``idm_*/train_and_eval_idm.py`` ``evaluate``): the generated ids become ``'<BOS>' + ','.join(names) + '<EOS>'``
(one leading BOS and a final EOS dropped first), every ``'<BOS>'`` and ``'<EOS>'`` is then *removed* from the text,
punctuation is stripped from both ends, and the text is split at commas. So, compared with benchkit's decoded
sequence:

- a generated BOS inside the actions becomes an empty word; one at either end disappears;
- a special token at either end loses its bracket (``'<PAD>'`` → ``'<PAD'`` or ``'PAD>'``);
- an empty generation becomes the single word ``''`` (or the text ``'None'``, when only EOS was generated).

BLEU and METEOR score those words as they are. Accuracy and precision map every word back to its id, and a word
that is not in the tokenizer's table (``''``, ``'<PAD'``, ``'None'``) raises a ``KeyError`` that skips the sample
in those two metrics only. benchkit's default scores every sample on its decoded classes (docs/decisions.md,
"recipe: reference vs benchkit"). Action names are assumed free of commas, as MUGEN's and BIMACS's are.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from benchkit.api import BOS, special_class

BOS_CLASS = special_class(BOS)
BOS_NAME = "<bos>"  # Vocabulary.class_name of a generated BOS, as name-based metrics receive it

_ACTION = re.compile(r"a(\d+)")
_SPECIAL = re.compile(r"<s(\d+)>")


def reference_words(words: Sequence[str]) -> list[str]:
    """A decoded hypothesis's words (``Vocabulary.class_name``: actions, ``<pad>``, ``<bos>``, ...) as the
    reference's text round trip leaves them: BOS removed from the text, punctuation stripped from both ends,
    split at commas."""
    text = ",".join("" if w == BOS_NAME else str(w) for w in words)
    return text.strip(string.punctuation).strip().split(",")


def reference_classes(hypothesis: Sequence[int]) -> list[int] | None:
    """A decoded hypothesis (action classes; specials as ``special_class`` ids) as the reference's accuracy and
    precision read it back: the classes of :func:`reference_words`, or ``None`` where a word is not in the
    tokenizer's table and the reference skips the sample (its ``KeyError``)."""
    # actions as a<c>, specials as <s<k>>: bracketed names that the strip can damage, as '<PAD>' in the reference
    words = reference_words(
        [BOS_NAME if c == BOS_CLASS else f"a{c}" if c >= 0 else f"<s{-c}>" for c in hypothesis]
    )
    out = []
    for word in words:
        if m := _ACTION.fullmatch(word):
            out.append(int(m.group(1)))
        elif m := _SPECIAL.fullmatch(word):
            out.append(-int(m.group(1)))
        else:
            return None
    return out


def reference_pairs(
    predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]
) -> tuple[list[list[int]], list[Sequence[int]]]:
    """The (hypothesis, reference) pairs the reference's accuracy and precision score: each hypothesis as
    :func:`reference_classes` reads it, the samples it cannot read left out."""
    hypotheses, kept = [], []
    for prediction, reference in zip(predictions, references, strict=True):
        if (hypothesis := reference_classes(prediction)) is not None:
            hypotheses.append(hypothesis)
            kept.append(reference)
    return hypotheses, kept
