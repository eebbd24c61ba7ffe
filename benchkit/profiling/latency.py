"""Latency with ``torch.utils.benchmark`` (docs/profiling.md): warm-up calls, then ``blocked_autorange`` — blocks
of runs until ``min_run_time`` seconds have been timed — with the median and interquartile range over blocks. The
timer synchronises the accelerator before reading the clock, so GPU times include the queued kernels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.benchmark import Measurement, Timer

MIN_BLOCKS = 5  # a call slower than min_run_time / 5 still gets five timed blocks, so the IQR means something


def time_call(fn: Callable[[], Any], *, warmup: int = 2, min_run_time: float = 1.0) -> dict[str, float]:
    """``median_ms`` and ``iqr_ms`` of one call of ``fn``; ``runs`` timed in ``blocks`` blocks (at least
    :data:`MIN_BLOCKS`), at the process's thread count (the benchmark ``Timer`` would otherwise use one)."""
    for _ in range(warmup):
        fn()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    per_block, blocks = m.number_per_run, len(m.times)
    if blocks < MIN_BLOCKS:
        extra = [timer.timeit(per_block) for _ in range(MIN_BLOCKS - blocks)]
        m, blocks = Measurement.merge([m, *extra])[0], MIN_BLOCKS
    return {"median_ms": m.median * 1e3, "iqr_ms": m.iqr * 1e3, "runs": blocks * per_block, "blocks": blocks}
