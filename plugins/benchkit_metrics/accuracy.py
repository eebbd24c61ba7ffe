"""``accuracy``: token accuracy with the reference's padding rule (spec invpatch.md §5), in percent.

Per sample the shorter of hypothesis and reference is right-padded with the padding class; tokens are pooled over
the test set, then ``correct / total`` (sklearn's ``accuracy_score`` on the pooled lists). ``reference_text: true``
scores each hypothesis as the reference reads it back from its text and leaves out the samples it cannot read
(``benchkit_metrics.reference_text``; an empty generation, for one).
"""

from __future__ import annotations

from collections.abc import Sequence

from benchkit.api import hookimpl, pad_pair
from benchkit_metrics.reference_text import reference_pairs


def token_accuracy(
    predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]], reference_text: bool = False
) -> float:
    """Percentage of pooled (padded) token positions where prediction equals reference."""
    if reference_text:
        predictions, references = reference_pairs(predictions, references)
    correct = total = 0
    for hyp, ref in zip(predictions, references, strict=True):
        h, r = pad_pair(hyp, ref)
        correct += sum(a == b for a, b in zip(h, r, strict=False))
        total += len(h)
    return 100.0 * correct / total if total else float("nan")


@hookimpl
def benchkit_register(registry):
    registry.metric("accuracy", token_accuracy, higher_is_better=True, unit="%")
