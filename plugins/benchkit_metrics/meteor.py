"""``meteor``: nltk METEOR on action-name sequences, averaged over samples (spec invpatch.md §5), on a 0-100 scale.

Per sample ``single_meteor_score(ref, hyp)`` with the reference's settings: alpha 0.9, beta 3, gamma 0.5, Porter
stemmer, lower-casing. Synonyms come from WordNet when ``nltk.corpus.wordnet`` is installed; otherwise from a
source without synonyms (exact and stem matches only), since WordNet cannot always be downloaded. The two can give
different numbers, so the source is part of the result: ``wordnet_source()`` says which one ``synonyms="auto"``
uses, and the metric is registered with meta ``synonyms=<that source>``. ``synonyms="none"`` forces the
synonym-free source (numbers comparable across machines); ``synonyms="wordnet"`` requires WordNet.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any

from nltk.stem.porter import PorterStemmer
from nltk.translate.meteor_score import single_meteor_score

from benchkit.api import hookimpl
from benchkit_metrics.reference_text import reference_words

SYNONYM_SOURCES: tuple[str, ...] = ("auto", "wordnet", "none")
_STEMMER = PorterStemmer()


class NoSynonyms:
    """A WordNet stand-in with no synsets: METEOR then matches exact and Porter-stem forms only."""

    def synsets(self, word: str) -> list[Any]:
        return []


@functools.cache
def _installed_wordnet() -> Any | None:
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except (LookupError, OSError):
        return None
    return wordnet


def wordnet_source() -> str:
    """``"wordnet"`` when nltk's WordNet data is installed, else ``"none"`` (what ``synonyms="auto"`` uses)."""
    return "wordnet" if _installed_wordnet() is not None else "none"


def synonym_source(synonyms: str = "auto") -> Any:
    """The object METEOR asks for ``synsets(word)``: nltk's WordNet or ``NoSynonyms()``."""
    if synonyms not in SYNONYM_SOURCES:
        raise ValueError(f"synonyms must be one of {', '.join(SYNONYM_SOURCES)}, not {synonyms!r}")
    wordnet = _installed_wordnet() if synonyms != "none" else None
    if synonyms == "wordnet" and wordnet is None:
        raise ValueError("synonyms='wordnet' but nltk's WordNet data is not installed (nltk.download('wordnet'))")
    return wordnet if wordnet is not None else NoSynonyms()


def meteor(
    predictions: Sequence[Sequence[Hashable]], references: Sequence[Sequence[Hashable]], synonyms: str = "auto",
    reference_text: bool = False,
) -> float:
    """Mean over samples of nltk ``single_meteor_score`` (alpha 0.9, beta 3, gamma 0.5, Porter), x100.
    ``reference_text``: each hypothesis as the reference's words after its text round trip (``reference_text``)."""
    wordnet = synonym_source(synonyms)
    if reference_text:
        predictions = [reference_words(h) for h in predictions]
    scores = [
        single_meteor_score(
            [str(t) for t in ref], [str(t) for t in hyp],
            stemmer=_STEMMER, wordnet=wordnet, alpha=0.9, beta=3.0, gamma=0.5,
        )
        for hyp, ref in zip(predictions, references, strict=True)
    ]
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


@hookimpl
def benchkit_register(registry):
    registry.metric("meteor", meteor, higher_is_better=True, unit="x100", tokens="names", synonyms=wordnet_source())
