"""Procedural-task metrics (spec vedit.md §3), in percent: COIN top-1 and procedure planning (SCHEMA protocol).

- ``top1``: single-label tasks (COIN step forecasting, task classification): the first predicted token against
  the one reference label, averaged over samples.
- ``planning-sr``: success rate, a sample counts when every step is right (SCHEMA ``success_rate``).
- ``planning-macc``: mean over all (sample, step) of ``pred == gt`` (SCHEMA ``mean_category_acc``: a per-step
  accuracy, not a class mean); the pooled token accuracy.
- ``planning-miou``: the true set IoU, ``|set(pred) & set(gt)| / |set(pred) | set(gt)|`` per sample, averaged.
- ``planning-miou-schema``: SCHEMA's ``acc_iou(aggregate=False).mean()``, a **bitwise** and/or on the integer class
  ids, ``(sum_t (pred_t & gt_t) + 1e-6) / (sum_t (pred_t | gt_t) + 1e-6)`` per sample: pred [1, 2, 3] vs
  gt [4, 5, 6] gives 2 / 19 = 10.5, not 0. SCHEMA's ids are 0-based (CrossTask ``action_id - 1``, COIN and NIV as
  stored), as benchkit's action indices are, so the numbers match SCHEMA's for the same predictions.

SCHEMA always compares T predicted steps with T true ones. benchkit applies the padding rule of ``accuracy``
(``pad_pair``) when lengths differ, so a missing or an extra step is a wrong step (and fails SR). The bitwise
variant has no meaning for padding or generated special tokens (negative classes): it raises ``ValueError`` for
them; use ``planning-miou``.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchkit.api import hookimpl, pad_pair
from benchkit_metrics.accuracy import token_accuracy

SCHEMA_EPS = 1e-6


def _mean_percent(values: list[float]) -> float:
    return 100.0 * sum(values) / len(values) if values else float("nan")


def top1_accuracy(predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> float:
    """Percentage of samples whose first predicted token is the (single) reference label; empty = wrong."""
    hits = []
    for hyp, ref in zip(predictions, references, strict=True):
        if len(ref) != 1:
            raise ValueError(f"top1 needs one reference label per sample, got {len(ref)}; use accuracy for sequences")
        hits.append(float(len(hyp) > 0 and hyp[0] == ref[0]))
    return _mean_percent(hits)


def success_rate(predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> float:
    """Percentage of samples with every (padded) step right."""
    return _mean_percent([float(h == r) for h, r in (pad_pair(*p) for p in zip(predictions, references, strict=True))])


def mean_step_accuracy(predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> float:
    """Percentage of (sample, step) pairs right, pooled over samples (SCHEMA's mAcc)."""
    return token_accuracy(predictions, references)


def set_miou(predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> float:
    """Mean over samples of the IoU of the predicted and true action sets (percent); two empty sets give 100."""
    ious = []
    for hyp, ref in zip(predictions, references, strict=True):
        h, r = set(hyp), set(ref)
        ious.append(len(h & r) / len(h | r) if h | r else 1.0)
    return _mean_percent(ious)


def schema_miou(predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> float:
    """SCHEMA's bitwise "IoU" per sample, ``(sum(p & g) + 1e-6) / (sum(p | g) + 1e-6)``, averaged (percent)."""
    ious = []
    for hyp, ref in zip(predictions, references, strict=True):
        if len(hyp) != len(ref) or min((*hyp, *ref), default=0) < 0:
            raise ValueError(
                "planning-miou-schema needs predictions of the reference's length with action ids >= 0 "
                f"(SCHEMA's setting), got {list(hyp)} for {list(ref)}; use planning-miou"
            )
        inter = sum(p & g for p, g in zip(hyp, ref, strict=True))
        union = sum(p | g for p, g in zip(hyp, ref, strict=True))
        ious.append((inter + SCHEMA_EPS) / (union + SCHEMA_EPS))
    return _mean_percent(ious)


@hookimpl
def benchkit_register(registry):
    registry.metric("top1", top1_accuracy, higher_is_better=True, unit="%")
    registry.metric("planning-sr", success_rate, higher_is_better=True, unit="%")
    registry.metric("planning-macc", mean_step_accuracy, higher_is_better=True, unit="%")
    registry.metric("planning-miou", set_miou, higher_is_better=True, unit="%")
    registry.metric("planning-miou-schema", schema_miou, higher_is_better=True, unit="%")
