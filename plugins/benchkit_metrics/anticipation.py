"""``ed``: long-horizon anticipation edit distance ED@Z with K candidates (spec vedit.md §3), lower is better.

``ED@z = mean_n min_k d(cand_k[:z], ref[:z]) / z``, as Ego4D's ``evaluation/lta_metrics.py`` computes it. ``d`` is
``distance="levenshtein"`` (default; Ego4D's code calls ``editdistance.eval``, plain Levenshtein) or
``distance="damerau"``, what the paper's text says: the optimal-string-alignment form of Damerau–Levenshtein that
the code's docstring cites (pyxDamerauLevenshtein), which adds swapping two adjacent tokens at cost 1 ("ab" → "ba"
is 1, not 2) and edits no substring twice ("ca" → "abc" is 3, where unrestricted Damerau–Levenshtein gives 2).

A sample's prediction is either K candidate sequences (a list of lists) or one sequence (K = 1). ED@5 of the same
candidates is ``z=5``: each candidate's 5-token prefix, min over K re-taken. ``part`` selects one stream of an
interleaved serialisation before the prefix is cut: with Ego4D targets written ``[v0, n0, v1, n1, ...]``,
``part="even"`` scores verbs and ``part="odd"`` nouns (``benchkit.sequence.padding.select_part``). References
(after ``part``) must have at least ``z`` tokens; a candidate shorter than ``z`` is compared as it is (the missing
tokens cost insertions).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from benchkit.api import hookimpl, select_part

DISTANCES: tuple[str, ...] = ("levenshtein", "damerau")


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Insertions, deletions and substitutions, each cost 1."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def damerau_levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Optimal string alignment distance: Levenshtein plus adjacent transpositions (cost 1), no substring edited
    twice (pyxDamerauLevenshtein's definition)."""
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def candidates(prediction: Sequence[Any]) -> list[list[Hashable]]:
    """A sample's prediction as a list of K candidate sequences (one plain sequence is K = 1)."""
    nested = [isinstance(p, list | tuple) for p in prediction]
    if all(nested) and nested:
        return [list(c) for c in prediction]
    if not any(nested):
        return [list(prediction)]
    raise ValueError(f"a prediction mixes candidate sequences and tokens: {prediction!r}")


def edit_distance_at(
    predictions: Sequence[Sequence[Any]],
    references: Sequence[Sequence[Hashable]],
    z: int = 20,
    distance: str = "levenshtein",
    part: str = "all",
) -> float:
    """Mean over samples of the min over K candidates of ``distance(cand[:z], ref[:z]) / z`` (lower is better)."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, not {distance!r}")
    if z < 1:
        raise ValueError(f"z must be at least 1, not {z}")
    dist = levenshtein if distance == "levenshtein" else damerau_levenshtein
    scores = []
    for prediction, reference in zip(predictions, references, strict=True):
        ref = select_part(reference, part)[:z]
        if len(ref) < z:
            raise ValueError(f"ED@{z} needs references of at least {z} tokens (part {part!r}), got {len(ref)}")
        scores.append(min(dist(select_part(c, part)[:z], ref) for c in candidates(prediction)) / z)
    return sum(scores) / len(scores) if scores else float("nan")


@hookimpl
def benchkit_register(registry):
    registry.metric("ed", edit_distance_at, higher_is_better=False, unit="", candidates=True)
    for z in (20, 5):
        for part, stream in (("even", "verb"), ("odd", "noun")):
            registry.preset(
                "metric", f"ed@{z}-{stream}", "ed", f"Ego4D LTA ED@{z}, {stream}s of [v0, n0, v1, n1, ...]",
                z=z, part=part,
            )
