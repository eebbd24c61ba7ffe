"""Peak memory of one call (docs/profiling.md): on CUDA the allocator's maximum allocated bytes above what was
allocated before the call; on CPU the process's resident-set high-water mark (reset through
``/proc/self/clear_refs``) above the resident set before the call — an approximation that includes allocator
caching and is unavailable (``None``) where the kernel does not allow the reset. Freed heap memory is first
handed back to the system (glibc ``malloc_trim``) so that blocks kept from earlier calls do not hide the call's
own peak."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import re
from collections.abc import Callable
from typing import Any

import torch


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+)\s*kB", f.read(), re.M).group(1))


def _trim_heap() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def peak_memory(fn: Callable[[], Any], device: torch.device) -> tuple[float | None, str]:
    """``(MiB, method)`` for one call of ``fn``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20, "CUDA max allocated above baseline"
    try:
        _trim_heap()
        before = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        fn()
        return max(0, _status_kib("VmHWM") - before) / 1024, "RSS high-water mark above baseline"
    except (OSError, AttributeError):
        return None, "unavailable (no resettable /proc/self high-water mark)"
