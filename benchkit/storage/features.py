"""Frozen-backbone extraction and the content-addressed on-disk feature cache.

An entry is keyed by the dataset's fingerprint and the backbone's (plugin, version, keyword arguments, weights and
preprocessing fingerprint). It holds ``frame.npy`` ``(N, T, D)`` and ``patch.npy`` ``(N, T, P, D)`` in float16,
read memory-mapped, and ``meta.json`` (shapes, patch grid, SHA-256 of each file). Inputs are a dataset's
``video(i)``: uint8 frames, or for a feature dataset (``kind = "features"``) float clip embeddings ``(C, k, E)``,
passed to the backbone as float32 (the ``precomputed`` backbone encodes them). It is built in a temporary
folder and renamed into place, so a killed extraction leaves no entry (its temporary folder is removed by the next
process that opens the cache); a truncated or corrupted entry is detected on load, moved aside to
``<key>.corrupt`` with a one-line warning and rebuilt, never used (``benchkit.storage.integrity``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchkit.errors import StoreError
from benchkit.grid.config import stable_hash
from benchkit.paths import default_cache_dir
from benchkit.registry.interfaces import Backbone, Dataset
from benchkit.storage.integrity import (
    FULL_VERIFY_BYTES,
    DamagedFile,
    file_sha256,
    quarantine,
    read_verified,
    sweep_once,
    temp_path,
    write_verified,
)

log = logging.getLogger("benchkit")
ARRAYS = ("frame", "patch")


@dataclass(frozen=True)
class CachedFeatures:
    key: str
    frame: np.ndarray  # (N, T, D) float16, memory-mapped
    patch: np.ndarray  # (N, T, P, D) float16, memory-mapped
    grid: tuple[int, int]
    computed: bool  # True when this call ran the backbone

    def level(self, level: str) -> np.ndarray:
        return self.frame if level == "frame" else self.patch


def _batch(dataset: Dataset, idx: range) -> torch.Tensor:
    """The backbone's input: uint8 frames as they are, float inputs (clip embeddings) as float32."""
    batch = np.stack([dataset.video(i) for i in idx])
    if np.issubdtype(batch.dtype, np.floating):
        batch = batch.astype(np.float32, copy=False)
    return torch.from_numpy(batch)


class FeatureCache:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_cache_dir()
        self.dir = self.root / "features"
        self.backbone_calls = 0  # forward passes made through this object (benchmarks assert 0 on a rerun)
        sweep_once(self.dir)  # temporary folders of killed extractions

    @staticmethod
    def key(dataset: Dataset, backbone: Backbone, backbone_config: dict[str, Any]) -> str:
        return stable_hash(
            {"dataset": dataset.fingerprint(), "backbone": backbone.fingerprint(), "config": backbone_config}, 20
        )

    def load(self, key: str, verify: bool | None = None) -> CachedFeatures | None:
        """The entry, or None if absent. A damaged entry is moved aside (one warning line) and reported absent."""
        folder = self.dir / key
        if not folder.is_dir():
            return None
        try:
            meta = read_verified(folder / "meta.json")
            arrays = {}
            for name in ARRAYS:
                path = folder / f"{name}.npy"
                if path.stat().st_size != meta["files"][name]["bytes"]:
                    raise ValueError(f"{path.name} is truncated")
                arrays[name] = np.load(path, mmap_mode="r")
                if list(arrays[name].shape) != meta["files"][name]["shape"]:
                    raise ValueError(f"{path.name} has shape {arrays[name].shape}")
            total = sum(f["bytes"] for f in meta["files"].values())
            if verify or (verify is None and total <= FULL_VERIFY_BYTES):
                for name in ARRAYS:
                    if file_sha256(folder / f"{name}.npy") != meta["files"][name]["sha256"]:
                        raise ValueError(f"{name}.npy does not match its checksum")
        except (OSError, ValueError, KeyError, TypeError, StoreError) as e:
            quarantine(folder, e.reason if isinstance(e, DamagedFile) else str(e), "recomputing it")
            return None
        return CachedFeatures(key, arrays["frame"], arrays["patch"], tuple(meta["grid"]), computed=False)

    def get_or_compute(
        self,
        dataset: Dataset,
        backbone: Backbone,
        backbone_config: dict[str, Any],
        batch_size: int = 8,
        progress: Callable[[int, int], None] | None = None,
    ) -> CachedFeatures:
        key = self.key(dataset, backbone, backbone_config)
        cached = self.load(key)
        if cached is not None:
            return cached
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f".{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be extracting the same entry
            cached = self.load(key)
            if cached is not None:
                return cached
            self._extract(key, dataset, backbone, backbone_config, batch_size, progress)
        cached = self.load(key)
        assert cached is not None, "a freshly written feature cache entry failed to load"
        return CachedFeatures(cached.key, cached.frame, cached.patch, cached.grid, computed=True)

    def _extract(self, key, dataset, backbone, backbone_config, batch_size, progress) -> None:
        tmp = temp_path(self.dir / key)
        tmp.mkdir(parents=True)
        n, arrays, grid, start = len(dataset), {}, None, time.perf_counter()
        try:
            with torch.inference_mode():
                for lo in range(0, n, batch_size):
                    idx = range(lo, min(n, lo + batch_size))
                    videos = _batch(dataset, idx)
                    out = backbone.encode(videos)
                    self.backbone_calls += 1
                    if not arrays:
                        grid = tuple(int(g) for g in out.grid)
                        for name in ARRAYS:
                            shape = (n, *getattr(out, name).shape[1:])
                            arrays[name] = np.lib.format.open_memmap(
                                tmp / f"{name}.npy", mode="w+", dtype=np.float16, shape=shape
                            )
                    for name in ARRAYS:
                        arrays[name][idx.start : idx.stop] = getattr(out, name).float().cpu().numpy()
                    if progress:
                        progress(idx.stop, n)
            files = {}
            for name, arr in arrays.items():
                arr.flush()
                path = tmp / f"{name}.npy"
                files[name] = {"shape": list(arr.shape), "bytes": path.stat().st_size, "sha256": file_sha256(path)}
            del arrays
            write_verified(
                tmp / "meta.json",
                {
                    "key": key,
                    "grid": list(grid),
                    "files": files,
                    "dtype": "float16",
                    "backbone": backbone_config,
                    "dataset": dataset.fingerprint(),
                    "samples": n,
                    "seconds": time.perf_counter() - start,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
            final = self.dir / key
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def entries(self) -> list[dict[str, Any]]:
        rows = []
        for folder in sorted(self.dir.glob("*")) if self.dir.is_dir() else []:
            if not folder.is_dir() or folder.name.startswith(".") or folder.name.endswith(".corrupt"):
                continue
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            try:
                meta = read_verified(folder / "meta.json")
            except (OSError, StoreError):
                meta = {}
            rows.append({"key": folder.name, "bytes": size, "meta": meta})
        return rows

    def prune(self, keys: list[str] | None = None) -> list[str]:
        removed = []
        for row in self.entries():
            if keys is None or any(row["key"].startswith(k) for k in keys):
                shutil.rmtree(self.dir / row["key"], ignore_errors=True)
                removed.append(row["key"])
        for aside in self.dir.glob("*.corrupt") if self.dir.is_dir() else []:  # damaged entries moved aside
            if keys is None or any(aside.name.startswith(k) for k in keys):
                shutil.rmtree(aside, ignore_errors=True)
        return removed
