"""Inverse-dynamics sequence metrics against hand-computed values (spec invpatch.md §5)."""

from __future__ import annotations

import math

import pytest
from benchkit_metrics import bleu as bleu_module
from benchkit_metrics import meteor as meteor_module
from benchkit_metrics import precision as precision_module
from benchkit_metrics.bleu import corpus_bleu, sentence_bleu4
from benchkit_metrics.meteor import NoSynonyms, meteor, synonym_source, wordnet_source
from benchkit_metrics.precision import weighted_precision
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

from benchkit.registry.plugins import Registry

# -- weighted precision ------------------------------------------------------------------------------------------


def test_weighted_precision_by_hand():
    # pooled y_true = [0, 0, 1, 1], y_pred = [0, 1, 1, 1]: precision(0) = 1/1, precision(1) = 2/3, supports 2 and 2
    # → (1 * 2 + 2/3 * 2) / 4 = 5/6
    assert weighted_precision([[0, 1], [1, 1]], [[0, 0], [1, 1]]) == pytest.approx(100 * 5 / 6)


def test_weighted_precision_padding_rule_and_zero_division():
    # hyp shorter: y_true [2, 3, 4], y_pred [2, PAD, PAD]: precision(2) = 1, classes 3 and 4 never predicted → 0
    # (sklearn's default zero_division), PAD predicted but has no support (weight 0) → (1 * 1) / 3
    assert weighted_precision([[2]], [[2, 3, 4]]) == pytest.approx(100 / 3)
    # hyp longer: y_true [5, PAD], y_pred [5, 6]: precision(5) = 1 (weight 1), PAD never predicted (weight 1) → 1/2
    assert weighted_precision([[5, 6]], [[5]]) == pytest.approx(50.0)


def test_weighted_precision_edge_cases():
    assert weighted_precision([[1, 2, 3]], [[1, 2, 3]]) == 100.0  # all correct
    assert weighted_precision([[2, 3, 1]], [[1, 2, 3]]) == 0.0  # all wrong
    assert weighted_precision([[]], [[1, 2]]) == 0.0  # empty hypothesis: only PAD predicted, no PAD support
    assert math.isnan(weighted_precision([[]], [[]]))
    with pytest.raises(ValueError):
        weighted_precision([[1]], [[1], [2]])


# -- BLEU --------------------------------------------------------------------------------------------------------

SWAP = (["a", "b", "c", "e", "d"], ["a", "b", "c", "d", "e"])
SHORT = (["a", "b"], ["a", "b", "c"])


def _method4(hyp_len: int, k: int) -> float:
    """nltk method4 for the k-th zero count (1-based): 1 / (2**k * 5 / ln(hyp_len)), over a denominator of 1."""
    return math.log(hyp_len) / (2**k * 5)


def test_sentence_bleu4_by_hand():
    # SWAP: p1 5/5, p2 2/4 (ab, bc), p3 1/3 (abc), p4 0/2 → smoothed method4 / 2; BP 1
    swap = (1 * 0.5 * (1 / 3) * (_method4(5, 1) / 2)) ** 0.25
    # SHORT: p1 2/2, p2 1/1, p3 and p4 have no n-grams (0/1) → smoothed twice; BP exp(1 - 3/2)
    short = math.exp(-0.5) * (1 * 1 * _method4(2, 1) * _method4(2, 2)) ** 0.25
    assert sentence_bleu4([SWAP[0]], [SWAP[1]]) == pytest.approx(100 * swap)
    assert swap == pytest.approx(0.3403088515262244)
    # averaged over samples, not pooled
    assert sentence_bleu4([SWAP[0], SHORT[0]], [SWAP[1], SHORT[1]]) == pytest.approx(50 * (swap + short))


def test_sentence_bleu4_edge_cases():
    ref = ["jump", "move_left", "jump", "descend"]
    assert sentence_bleu4([ref], [ref]) == pytest.approx(100.0)  # all correct
    assert sentence_bleu4([["x", "y", "z", "w"]], [ref]) == 0.0  # all wrong: no unigram match
    assert sentence_bleu4([[]], [ref]) == 0.0  # empty hypothesis
    assert math.isnan(sentence_bleu4([], []))
    # ints score as names do: BLEU compares tokens for equality only
    assert sentence_bleu4([[0, 1, 2, 4, 3]], [[0, 1, 2, 3, 4]]) == pytest.approx(sentence_bleu4([SWAP[0]], [SWAP[1]]))


def test_corpus_bleu_by_hand_and_against_nltk():
    hyps, refs = [["a", "b", "c", "d"], ["x"]], [["a", "b", "c", "d"], ["y"]]
    # n-gram counts pooled over the corpus: p1 4/5, p2 3/3, p3 2/2, p4 1/1; lengths 5 and 5 → BP 1
    assert corpus_bleu(hyps, refs) == pytest.approx(100 * 0.8**0.25)
    # it is not the mean of sentence BLEUs (100 and 0 → 50 with method4)
    assert sentence_bleu4(hyps, refs) == pytest.approx(50.0)
    # hypotheses of 4+ tokens, no zero n-gram count: sacrebleu agrees with nltk's unsmoothed corpus BLEU
    # (nltk counts a sentence without n-grams of an order as one n-gram, which is why "x" is left out here)
    hyps, refs = [["a", "b", "c", "d"], ["x", "y", "z", "w", "e"]], [["a", "b", "c", "d"], ["x", "y", "z", "w", "f"]]
    by_hand = 100 * (8 / 9 * 6 / 7 * 4 / 5 * 2 / 3) ** 0.25
    assert corpus_bleu(hyps, refs) == pytest.approx(by_hand)
    assert corpus_bleu(hyps, refs) == pytest.approx(100 * nltk_corpus_bleu([[r] for r in refs], hyps))


def test_corpus_bleu_edge_cases():
    ref = ["pick up", "place", "hold", "pour"]  # a name with a space stays one token
    assert corpus_bleu([ref], [ref]) == pytest.approx(100.0)  # all correct
    assert corpus_bleu([["idle", "cut", "saw", "stir"]], [ref]) == 0.0  # all wrong: no match at all
    # unigrams only: sacrebleu's default "exp" smoothing gives the k-th zero count 1 / 2**k over its total
    # → p1 4/4, p2 (1/2)/3, p3 (1/4)/2, p4 (1/8)/1
    shuffled = ["place", "pick up", "pour", "hold"]
    assert corpus_bleu([shuffled], [ref]) == pytest.approx(100 * (1 / 6 * 1 / 8 * 1 / 8) ** 0.25)
    assert corpus_bleu([[]], [ref]) == 0.0  # empty hypothesis
    assert corpus_bleu([[3, 1, 2, 0]], [[3, 1, 2, 0]]) == pytest.approx(100.0)  # int tokens
    assert corpus_bleu([[3, 1, 2]], [[3, 1, 2]]) == 0.0  # no 4-gram in the whole corpus: sacrebleu gives 0
    assert math.isnan(corpus_bleu([], []))
    with pytest.raises(ValueError):
        corpus_bleu([ref], [])


# -- METEOR ------------------------------------------------------------------------------------------------------


def test_meteor_by_hand_without_synonyms():
    # SWAP: 5 matches, P = R = 1 → Fmean 1; chunks abc | e | d = 3 → penalty 0.5 * (3/5)^3 = 0.108
    assert meteor([SWAP[0]], [SWAP[1]], synonyms="none") == pytest.approx(100 * (1 - 0.5 * 0.6**3))
    # 1 match of 2 / 3: P 1/2, R 1/3, Fmean = P R / (0.9 P + 0.1 R); one chunk of one match → penalty 0.5
    p, r = 1 / 2, 1 / 3
    fmean = p * r / (0.9 * p + 0.1 * r)
    assert meteor([["a", "x"]], [["a", "b", "c"]], synonyms="none") == pytest.approx(100 * 0.5 * fmean)
    # Porter stems and lower-casing match "Jumping" with "jumps": P = R = 1, one chunk of one → 0.5
    assert meteor([["Jumping"]], [["jumps"]], synonyms="none") == pytest.approx(50.0)
    # averaged over samples
    assert meteor([["Jumping"], ["x"]], [["jumps"], ["y"]], synonyms="none") == pytest.approx(25.0)


def test_meteor_edge_cases():
    ref = ["idle", "approach", "lift", "pour"]
    assert meteor([ref], [ref], synonyms="none") == pytest.approx(100 * (1 - 0.5 * 0.25**3))  # 1 chunk of 4
    assert meteor([["x", "y"]], [ref], synonyms="none") == 0.0
    assert meteor([[]], [ref], synonyms="none") == 0.0
    assert meteor([[1, 2]], [[1, 2]], synonyms="none") == meteor([["1", "2"]], [["1", "2"]], synonyms="none")
    assert math.isnan(meteor([], [], synonyms="none"))
    with pytest.raises(ValueError, match="synonyms"):
        meteor([ref], [ref], synonyms="thesaurus")


class _Thesaurus:
    """A synonym source in WordNet's shape: ``synsets(word)`` → objects with ``lemmas()`` → ``name()``."""

    class _Lemma:
        def __init__(self, name):
            self._name = name

        def name(self):
            return self._name

    class _Synset:
        def __init__(self, names):
            self._lemmas = [_Thesaurus._Lemma(n) for n in names]

        def lemmas(self):
            return self._lemmas

    def synsets(self, word):
        return [self._Synset(["grip", "hold"])] if word in ("grip", "hold") else []


def test_meteor_synonym_source_is_recorded_and_used(monkeypatch):
    installed = wordnet_source()
    assert installed in ("wordnet", "none")
    assert isinstance(synonym_source("none"), NoSynonyms) and synonym_source("none").synsets("hold") == []
    # with a WordNet-shaped source installed, "auto" and "wordnet" use it and synonyms match
    monkeypatch.setattr(meteor_module, "_installed_wordnet", lambda: _Thesaurus())
    assert wordnet_source() == "wordnet"
    # (nltk looks synonyms up for the Porter stems of the words still unmatched: "grip" and "hold" are stems)
    assert meteor([["grip"]], [["hold"]], synonyms="auto") == pytest.approx(50.0)
    assert meteor([["grip"]], [["hold"]], synonyms="wordnet") == pytest.approx(50.0)
    assert meteor([["grip"]], [["hold"]], synonyms="none") == 0.0
    # without it, "auto" falls back to no synonyms and "wordnet" refuses
    monkeypatch.setattr(meteor_module, "_installed_wordnet", lambda: None)
    assert wordnet_source() == "none"
    assert meteor([["grip"]], [["hold"]]) == 0.0
    with pytest.raises(ValueError, match="WordNet"):
        meteor([["grip"]], [["hold"]], synonyms="wordnet")


# -- registration ------------------------------------------------------------------------------------------------


def test_sequence_metrics_registered_with_their_meta():
    registry = Registry()  # only these plugins: loading every plugin imports torch and more
    for module in (precision_module, bleu_module, meteor_module):
        module.benchkit_register(registry=registry)
    metrics = registry.entries["metric"]
    for name in ("precision", "bleu4", "corpus-bleu", "meteor"):
        assert metrics[name].meta["higher_is_better"] is True
    assert metrics["precision"].meta.get("tokens") is None  # class ids, with the padding class
    assert {metrics[n].meta["tokens"] for n in ("bleu4", "corpus-bleu", "meteor")} == {"names"}
    assert metrics["meteor"].meta["synonyms"] in ("wordnet", "none")
