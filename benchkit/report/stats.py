"""Statistics over folds or repeats (spec invpatch.md §5: not in the reference code).

- ``summarize``: mean ± 95% confidence interval, ``half_width = t(0.975, n - 1) * s / sqrt(n)`` with the sample
  standard deviation (ddof 1), and the number of values ``n``; the half width is NaN for a single value.
- ``paired_comparison``: two cells scored on the same folds. Over the folds present in both (a NaN counts as
  absent), the differences ``a_k - b_k`` get the same mean ± CI, and a paired t-test (scipy ``ttest_rel``,
  two-sided) gives ``t`` and ``p``. A positive difference means ``a`` scored higher.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Summary:
    mean: float
    half_width: float
    n: int


@dataclass(frozen=True)
class Paired:
    """``a - b`` over ``n`` shared folds: mean difference ± ``half_width``, paired t statistic and p-value."""

    mean_diff: float
    half_width: float
    t: float
    p: float
    n: int


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = sum(values) / n
    if n == 1:
        return Summary(mean, math.nan, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return Summary(mean, t * sd / math.sqrt(n), n)


def paired_comparison(
    a: Mapping[Hashable, float] | Sequence[float],
    b: Mapping[Hashable, float] | Sequence[float],
    confidence: float = 0.95,
) -> Paired:
    """Paired t-test of ``a`` against ``b``, keyed by fold (a sequence is keyed by position).

    With fewer than two shared folds ``t`` and ``p`` are NaN; with identical differences scipy's convention holds
    (``t = ±inf, p = 0`` for a non-zero difference, NaN for none).
    """
    a = a if isinstance(a, Mapping) else dict(enumerate(a))
    b = b if isinstance(b, Mapping) else dict(enumerate(b))
    folds = [k for k in a if k in b and not (math.isnan(a[k]) or math.isnan(b[k]))]
    diff = summarize([a[k] - b[k] for k in folds], confidence)
    if diff.n < 2:
        return Paired(diff.mean, diff.half_width, math.nan, math.nan, diff.n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: scipy returns inf / NaN and warns
        result = stats.ttest_rel([a[k] for k in folds], [b[k] for k in folds])
    return Paired(diff.mean, diff.half_width, float(result.statistic), float(result.pvalue), diff.n)
