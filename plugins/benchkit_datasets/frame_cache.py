"""The on-disk cache of decoded frames and recorded episodes: ``<cache>/datasets/<namespace>/<key>.npy``.

An entry is keyed by a hash of everything that determines its content (the source's identity, the frame size,
the decoder version), written to a temporary name and renamed into place, and read back memory-mapped, so a large
dataset never sits in RAM and a killed run leaves no partial entry. An entry that fails to load is rebuilt.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchkit.config import stable_hash
from benchkit.features import default_cache_dir

CACHE_VERSION = 1


def cache_path(namespace: str, payload: Any, suffix: str = ".npy") -> Path:
    key = stable_hash({"cache_version": CACHE_VERSION, **payload}, 24)
    return default_cache_dir() / "datasets" / namespace / f"{key}{suffix}"


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically (temporary name in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_array(path: Path) -> np.ndarray | None:
    """The stored array memory-mapped, or ``None`` when absent or unreadable (then it is removed)."""
    if not path.is_file():
        return None
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        path.unlink(missing_ok=True)
        return None


def cached_array(namespace: str, payload: Any, build: Callable[[], np.ndarray]) -> np.ndarray:
    """The array stored under ``payload``'s key, built by ``build()`` and stored on the first call."""
    path = cache_path(namespace, payload)
    array = load_array(path)
    if array is None:
        save_array(path, build())
        array = load_array(path)
        assert array is not None, f"a freshly written cache entry failed to load: {path}"
    return array
