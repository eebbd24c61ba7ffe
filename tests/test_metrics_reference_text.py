"""``reference_text``: the metrics read a hypothesis back from its decoded text as InvPatch's reference evaluation
does (``benchkit_metrics.reference_text``), checked against a re-implementation of the reference's string steps."""

from __future__ import annotations

import random
import string

from benchkit_datasets._mugen_rules import MUGEN_ACTIONS
from benchkit_metrics.accuracy import token_accuracy
from benchkit_metrics.bleu import sentence_bleu4
from benchkit_metrics.meteor import meteor
from benchkit_metrics.precision import weighted_precision
from benchkit_metrics.reference_text import reference_classes, reference_pairs, reference_words

from benchkit.sequence.vocabulary import BOS, PAD, PAD_CLASS, Vocabulary, special_class

MUGEN = Vocabulary(MUGEN_ACTIONS, delimiter=True)  # PAD 0, BOS 1, actions 2-8, delimiter 9, EOS 10
NAMES = {PAD: "<pad>", BOS: "<bos>", 9: "<sep>", 10: "<eos>", **{i + 2: a for i, a in enumerate(MUGEN_ACTIONS)}}


def reference_evaluation(tokens: list[int]) -> tuple[list[str], list[int] | None]:
    """The reference's steps on one generated sequence (InvPatch ``InvPatch.decode``, ``ActionTokenizerMUGEN.decode``,
    ``__format_text`` and the label lookup in ``evaluate``): the words BLEU / METEOR score, and the token ids its
    accuracy and precision use (``None``: its ``KeyError``, the sample is skipped there)."""
    if len(tokens) == 1:  # tokens.squeeze() is 0-d, list() raises: the text 'None'
        text = "None"
    else:
        if tokens[0] == BOS:
            tokens = tokens[1:]
        if tokens and tokens[-1] == MUGEN.eos:
            tokens = tokens[:-1]
        text = "<bos>" + ",".join(NAMES[t] for t in tokens) + "<eos>"
    text = text.replace("<bos>", "").replace("<eos>", "").replace(" , ", ",").replace(", ", ",")
    words = text.strip(string.punctuation).strip().split(",")
    table = {name: token for token, name in NAMES.items()}
    ids = [table[w] for w in words] if all(w in table for w in words) else None
    return words, ids


def _generations(n: int, seed: int = 0) -> list[list[int]]:
    """Greedy outputs as the decoder produces them: mostly BOS first, any token after, cut at EOS or the limit."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens = [BOS] if rng.random() < 0.9 else []
        while len(tokens) < 8:
            tokens.append(rng.choice([PAD, BOS, 9, MUGEN.eos, *range(2, 9), *range(2, 9)]))
            if tokens[-1] == MUGEN.eos:
                break
        out.append(tokens)
    return out


CASES = [
    [BOS, 2, 3, 10],  # plain
    [BOS, 10],  # empty generation: the word '' (skipped)
    [BOS, 2, BOS, 3, 10],  # BOS inside: an empty word (skipped)
    [BOS, 2, 3, BOS, 10],  # BOS at the end: removed
    [BOS, BOS, 2, 3, 10],  # BOS at the start: removed
    [BOS, 2, PAD, 3, 10],  # PAD inside: the padding class
    [BOS, 2, 3, PAD, 10],  # PAD at the end: '<pad' (skipped)
    [BOS, 9, 2, 10],  # delimiter at the start: 'sep>' (skipped)
    [BOS, 2, 9, 3],  # no EOS (decode limit), delimiter inside
]


def test_reference_round_trip_matches_the_reference_steps():
    actions = range(2, 2 + len(MUGEN_ACTIONS))
    generations = CASES + _generations(1000)
    for tokens in generations:
        words, ids = reference_evaluation(tokens)
        decoded = MUGEN.decode(tokens)
        if len(tokens) > 1:  # one generated token happens only when it is EOS: both sides then score no match
            assert reference_words([MUGEN.class_name(c) for c in decoded]) == words, tokens
        expected = None if ids is None else [t - 2 if t in actions else special_class(t) for t in ids]
        assert reference_classes(decoded) == expected, tokens
    skipped = sum(reference_classes(MUGEN.decode(t)) is None for t in generations)
    assert 0 < skipped < len(generations)  # both kinds occur


def test_reference_classes_cases():
    read = [reference_classes(MUGEN.decode(t)) for t in CASES]
    assert read == [[0, 1], None, None, [0, 1], [0, 1], [0, PAD_CLASS, 1], None, None, [0, special_class(9), 1]]


def test_reference_text_changes_every_sequence_metric():
    """Each metric's ``reference_text`` changes its score where the reference's text round trip matters, and
    leaves it alone where it does not."""
    hyps = [MUGEN.decode(t) for t in ([BOS, 2, 3, 4, 10], [BOS, 10], [BOS, 2, BOS, 3, 10], [BOS, 5, 6, BOS, 10])]
    refs = [[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4]]
    for metric in (token_accuracy, weighted_precision):
        assert metric(hyps, refs, reference_text=True) != metric(hyps, refs)
        assert metric(hyps[:1], refs[:1], reference_text=True) == metric(hyps[:1], refs[:1])
    # the reference leaves out the empty and the BOS-inside samples: scores on the two others, the last one's BOS gone
    kept_h, kept_r = reference_pairs(hyps, refs)
    assert kept_h == [[0, 1, 2], [3, 4]] and kept_r == [refs[0], refs[3]]
    assert token_accuracy(hyps, refs, reference_text=True) == 100.0
    names = [[MUGEN.class_name(c) for c in h] for h in hyps]
    ref_names = [[MUGEN.class_name(c) for c in r] for r in refs]
    for metric in (sentence_bleu4, lambda h, r, **k: meteor(h, r, synonyms="none", **k)):
        assert metric(names, ref_names, reference_text=True) != metric(names, ref_names)  # the trailing BOS
        assert metric(names[:1], ref_names[:1], reference_text=True) == metric(names[:1], ref_names[:1])
    assert reference_pairs([[]], [[0]]) == ([], [])
    assert token_accuracy([[]], [[0]], reference_text=True) != token_accuracy([[]], [[0]])  # nan: nothing scored
