"""``precision``: weighted precision with the reference's padding rule (spec invpatch.md §5), in percent.

The pooled token lists are built exactly as for ``accuracy`` (``pad_pair``: the shorter of hypothesis and reference
is right-padded with the padding class, then tokens are pooled over the test set). The score is sklearn's
``precision_score(y_true, y_pred, average="weighted")`` with its default ``zero_division``: per class
``TP / (TP + FP)``, 0 for a class that is never predicted, averaged with the class's support in ``y_true`` as
weight (classes only ever predicted weigh 0). Written without sklearn, which benchkit does not depend on.
``reference_text: true`` scores each hypothesis as the reference reads it back from its text and leaves out the
samples it cannot read (``benchkit_metrics.reference_text``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from benchkit.api import hookimpl, pad_pair
from benchkit_metrics.reference_text import reference_pairs


def weighted_precision(
    predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]], reference_text: bool = False
) -> float:
    """Support-weighted mean over reference classes of per-class precision on pooled padded tokens (percent)."""
    if reference_text:
        predictions, references = reference_pairs(predictions, references)
    predicted, support, correct = Counter(), Counter(), Counter()
    for hyp, ref in zip(predictions, references, strict=True):
        for p, t in zip(*pad_pair(hyp, ref), strict=True):
            predicted[p] += 1
            support[t] += 1
            correct[p] += p == t
    total = sum(support.values())
    if not total:
        return float("nan")
    return 100.0 * sum(correct[c] / predicted[c] * n for c, n in support.items() if predicted[c]) / total


@hookimpl
def benchkit_register(registry):
    registry.metric("precision", weighted_precision, higher_is_better=True, unit="%")
