"""Wall-clock timing shared by the benchmarks: both paths of a comparison are timed by the same wrapper."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], times: list[float]) -> Callable[[], Any]:
    """``fn`` that appends its wall time (``time.perf_counter``) to ``times``, whether pytest-benchmark runs the
    call or the test does."""

    def run() -> Any:
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        return out

    return run


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
