"""``process``: one worker process per CPU core or GPU, folds in parallel, each worker pinned to its device.

Workers are started with ``spawn`` (no forked torch state), each with ``CUDA_VISIBLE_DEVICES`` set to its own GPU
when GPUs are used and ``torch`` limited to ``threads`` intra-op threads, so workers do not oversubscribe the cores.
Each worker loads the installed plugins and plans the grid once; features come from the shared on-disk cache (the
first worker that needs an entry computes it under the cache's lock, the others wait and read it).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from benchkit.api import ConfigError, hookimpl

_SLOT: Any = None


def _init_worker(counter: Any, devices: list[str], threads: int) -> None:
    """Runs first in every worker: take the next slot, pin its GPU, limit threads (before CUDA initialises)."""
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _gpu_ids() -> list[str]:
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class ProcessExecutor:
    """A pool of ``workers`` processes (default: one per GPU when GPUs are visible, else one per CPU core)."""

    in_process = False

    def __init__(self, workers: int | None = None, threads: int | None = None, gpus: bool | None = None) -> None:
        cores = os.cpu_count() or 1
        devices = _gpu_ids() if gpus in (None, True) else []
        if gpus and not devices:
            raise ConfigError("executor process: gpus: true but no CUDA device is visible")
        self.workers = workers or (len(devices) if devices else cores)
        if self.workers < 1:
            raise ConfigError(f"executor process: workers must be >= 1, got {self.workers}")
        self.threads = threads or max(1, cores // self.workers)
        self.devices = devices
        self._pool: ProcessPoolExecutor | None = None
        self._pending: set[Future] = set()

    def map_unordered(self, work: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        ctx = mp.get_context("spawn")
        counter = ctx.Value("i", 0)
        self._pool = ProcessPoolExecutor(
            max_workers=min(self.workers, max(1, len(tasks))), mp_context=ctx,
            initializer=_init_worker, initargs=(counter, self.devices, self.threads),
        )
        self._pending = {self._pool.submit(work, t) for t in tasks}
        while self._pending:
            done, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            for future in done:
                if not future.cancelled():
                    yield future.result()
        self.close()

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            for future in self._pending if cancel else ():
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None
            self._pending = set()


@hookimpl
def benchkit_register(registry):
    registry.executor("process", ProcessExecutor)
