"""Statistics over folds: mean ± 95% confidence interval (spec invpatch.md §5: not in the reference code).

``half_width = t(0.975, n - 1) * s / sqrt(n)`` with the sample standard deviation (ddof 1); undefined (NaN) for a
single fold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Summary:
    mean: float
    half_width: float
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
