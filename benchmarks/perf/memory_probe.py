"""Peak memory of a call on Linux, two ways:

- anonymous memory (``RssAnon`` in ``/proc/self/status``, sampled every ``interval`` seconds on a thread): what the
  process allocated itself. Pages of a memory-mapped file are not in it: the kernel can drop them at any time.
- the resident-set high-water mark (``benchkit.profiling.memory.peak_memory``): anonymous and file-backed pages,
  so a memory map's pages count once they have been read.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import torch

from benchkit.profiling.memory import peak_memory


def _kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+)\s*kB", f.read(), re.M).group(1))


def anon_peak(fn: Callable[[], Any], interval: float = 0.005) -> tuple[Any, float]:
    """``(fn(), peak anonymous memory above the level before the call, MiB)``."""
    baseline = _kib("RssAnon")
    peak, stop = baseline, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _kib("RssAnon"))
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out = fn()
    finally:
        stop.set()
        thread.join()
    return out, (max(peak, _kib("RssAnon")) - baseline) / 1024


def peaks(fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """``(fn(), anonymous peak MiB, resident-set high-water mark above baseline MiB)``: ``fn`` runs once."""
    holder: dict[str, Any] = {}

    def call() -> None:
        holder["out"], holder["anon"] = anon_peak(fn)

    rss, _ = peak_memory(call, torch.device("cpu"))
    return holder["out"], holder["anon"], rss
