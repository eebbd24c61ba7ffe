"""BLEU on action-name sequences (spec invpatch.md §5), on a 0-100 scale.

- ``bleu4``: what the reference reports as BLEU@4: per sample nltk ``sentence_bleu([ref], hyp)`` with uniform
  4-gram weights and ``SmoothingFunction().method4``, **averaged over samples**.
- ``corpus-bleu``: corpus BLEU by sacrebleu with ``tokenize="none"`` (n-gram counts pooled over the test set,
  sacrebleu's default ``exp`` smoothing). A different number from ``bleu4``; never compare one with the other.

Both take sequences of hashable tokens. The reference scores action *names*, so both are registered with meta
``tokens="names"``: the runner passes names (special tokens as ``<pad>``, ``<bos>``, ...). Integer ids give the
same scores as long as distinct names have distinct ids, since BLEU only compares tokens for equality.
``bleu4`` with ``reference_text: true`` scores each hypothesis as the reference's words after its text round trip
(``benchkit_metrics.reference_text``: a generated BOS removed from the text, punctuation stripped at the ends).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from sacrebleu.metrics import BLEU

from benchkit.api import hookimpl
from benchkit_metrics.reference_text import reference_words

_METHOD4 = SmoothingFunction().method4


def sentence_bleu4(
    predictions: Sequence[Sequence[Hashable]], references: Sequence[Sequence[Hashable]], reference_text: bool = False
) -> float:
    """Mean over samples of nltk sentence BLEU-4 with smoothing method4 (the reference's BLEU@4), x100."""
    if reference_text:
        predictions = [reference_words(h) for h in predictions]
    scores = [
        sentence_bleu([list(ref)], list(hyp), smoothing_function=_METHOD4)
        for hyp, ref in zip(predictions, references, strict=True)
    ]
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


def corpus_bleu(predictions: Sequence[Sequence[Hashable]], references: Sequence[Sequence[Hashable]]) -> float:
    """sacrebleu corpus BLEU, ``tokenize="none"``, on the token sequences (0-100).

    Each distinct token is first mapped to a whitespace-free word (``t0``, ``t1``, ...), so that a name containing
    a space stays one token and ints and strings are handled alike; BLEU depends only on token equality.
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        return float("nan")
    words: dict[Hashable, str] = {}

    def line(tokens: Sequence[Hashable]) -> str:
        return " ".join(words.setdefault(t, f"t{len(words)}") for t in tokens)

    hyps = [line(h) for h in predictions]
    refs = [line(r) for r in references]
    return float(BLEU(tokenize="none").corpus_score(hyps, [refs]).score)


@hookimpl
def benchkit_register(registry):
    registry.metric("bleu4", sentence_bleu4, higher_is_better=True, unit="x100", tokens="names")
    registry.metric("corpus-bleu", corpus_bleu, higher_is_better=True, unit="x100", tokens="names")
