"""``loggers.jsonl``: append each finished cell to a JSON Lines file, one object per line.

The file is ``<run_dir>/cells.jsonl`` unless ``BENCHKIT_JSONL`` names another (one file across runs, say); its
folder is created. A line is ``{"time", "run_dir", "cell", "summary"}`` with the arguments of
``benchkit_cell_finished``; a non-finite number (the half width over one fold) is written as ``null``. Each line is
one ``write`` to a file opened for appending, so lines from concurrent runs do not interleave.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from benchkit.api import StoreError, hookimpl

ENV = "BENCHKIT_JSONL"


def jsonl_path(run_dir: str | Path) -> Path:
    return Path(os.environ.get(ENV) or Path(run_dir) / "cells.jsonl")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@hookimpl
def benchkit_cell_finished(cell: dict[str, Any], summary: dict[str, Any], run_dir: str) -> None:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_dir": str(run_dir), "cell": cell, "summary": summary}
    line = json.dumps(_finite(record), default=str, allow_nan=False, ensure_ascii=False) + "\n"
    path = jsonl_path(run_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as e:
        error = f"loggers.jsonl: cannot append to {path} ({e.strerror or e}); set {ENV} to a writable file"
        raise StoreError(error) from e
