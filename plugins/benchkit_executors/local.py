"""``local``: folds run one after another in the driver process (the default; what tests and debugging use)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchkit.api import hookimpl


class LocalExecutor:
    """Serial, in-process: ``map_unordered`` yields results in task order."""

    in_process = True

    def __init__(self) -> None:
        self._cancelled = False

    def map_unordered(self, work: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        self._cancelled = False
        for task in tasks:
            if self._cancelled:
                return
            yield work(task)

    def close(self, cancel: bool = False) -> None:
        self._cancelled = self._cancelled or cancel


@hookimpl
def benchkit_register(registry):
    registry.executor("local", LocalExecutor)
