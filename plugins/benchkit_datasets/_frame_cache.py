"""The on-disk cache of decoded frames and recorded episodes: ``<cache>/datasets/<namespace>/<key>.npy``.

An entry is keyed by a hash of everything that determines its content (the source's identity, the frame size,
the decoder version), written to a temporary name and renamed into place with a ``<key>.npy.sha256`` checksum beside
it, and read back memory-mapped, so a large dataset never sits in RAM and a killed run leaves no partial entry
(temporaries of dead processes are removed on the next use of the folder). An entry that fails its checksum or does
not load is moved aside to ``<key>.npy.corrupt`` with a one-line warning and rebuilt (``benchkit.storage.integrity``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchkit.api import check_file, checksum_path, default_cache_dir, quarantine, stable_hash, sweep_once, write_file

CACHE_VERSION = 1


def cache_path(namespace: str, payload: Any, suffix: str = ".npy") -> Path:
    key = stable_hash({"cache_version": CACHE_VERSION, **payload}, 24)
    return default_cache_dir() / "datasets" / namespace / f"{key}{suffix}"


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically, with its checksum (``benchkit.storage.integrity.write_file``)."""
    write_file(path, lambda tmp: np.save(tmp, array, allow_pickle=False))


def load_array(path: Path) -> np.ndarray | None:
    """The stored array memory-mapped, or ``None`` when absent or damaged (then it is moved aside)."""
    sweep_once(path.parent)
    if not path.is_file():
        return None
    reason = check_file(path)
    if reason is None:
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            reason = f"unreadable: {e}"
    quarantine(path, reason, "recomputing it", drop=[checksum_path(path)])
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
