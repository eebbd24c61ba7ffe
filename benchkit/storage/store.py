"""The run directory: resolved config, environment, per-fold results, written atomically, under a lock.

Layout::

    RUN_DIR/
      .lock                         held (flock) by the running ``benchkit run``; released by the OS on kill
      grid.yaml                     the grid as given, overrides applied
      plan.json                     cells of the last run in grid order: id, labels, resolved config
      environment.json              versions, git commit, device
      cells/<cell-id>/cell.json     resolved config of the cell
      cells/<cell-id>/fold-<k>.json metrics, timings, seeds; written last, so its presence means "stored"
      cells/<cell-id>/fold-<k>.predictions.json
      cells/<cell-id>/fold-<k>.error.json  a fold that raised: error, traceback, attempts (removed once it succeeds)
      cells/<cell-id>/profile.json  the cell's profile (grid ``profile:``)
      baselines/<name>-<dataset-key>/fold-<k>.json
      leaderboard.md

Every file is written to a temporary name, fsynced and renamed, so a killed run never leaves a partial file that
reads as valid; temporaries of a killed run are removed when the next run takes the lock. Every JSON record
carries its checksum and is checked when read (``benchkit.storage.integrity``): a damaged fold record or
predictions file is moved aside to ``*.corrupt`` with a one-line warning and its fold is run again.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from benchkit.errors import StoreError
from benchkit.storage.integrity import (
    DamagedFile,
    atomic_write_text,
    quarantine,
    read_checked,
    read_verified,
    sweep_temporaries,
    write_verified,
)

__all__ = ["RunStore", "atomic_write_json", "atomic_write_text", "read_json"]


def atomic_write_json(path: Path, payload: Any) -> None:
    """A JSON record, written atomically with its checksum (``benchkit.storage.integrity.write_verified``)."""
    write_verified(path, payload)


def read_json(path: Path) -> Any:
    """A stored JSON record, checked; a damaged one is a one-line ``StoreError`` (``DamagedFile``) naming it."""
    return read_verified(path)


class RunStore:
    """Read and write one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock_fd: int | None = None

    # -- locking --------------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the run directory for this process; a second ``benchkit run`` on it refuses with one line."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreError(f"run directory {self.root} is in use by another benchkit run (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        self.sweep()

    def sweep(self) -> list[Path]:
        """Remove the temporary files a killed run left (the lock is held, so no other run is writing here)."""
        folders = [self.root, *(p for d in ("cells", "baselines") for p in sorted((self.root / d).glob("*")))]
        removed = [p for f in folders for p in sweep_temporaries(f, owned=True)]
        return removed + sweep_temporaries(self.root / "report")

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RunStore:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    # -- paths ----------------------------------------------------------------------------------------------
    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def baseline_dir(self, name: str, dataset_key: str) -> Path:
        return self.root / "baselines" / f"{name}-{dataset_key}"

    @staticmethod
    def fold_path(folder: Path, fold: int) -> Path:
        return folder / f"fold-{fold}.json"

    @staticmethod
    def predictions_path(folder: Path, fold: int) -> Path:
        return folder / f"fold-{fold}.predictions.json"

    # -- folds ----------------------------------------------------------------------------------------------
    def load_fold(self, folder: Path, fold: int, *, predictions: bool = False) -> dict[str, Any] | None:
        """A stored fold, or None when it is not stored. A damaged record (or, with ``predictions``, a damaged or
        missing predictions file) is moved aside to ``*.corrupt`` with a one-line warning and reported as not
        stored, so the fold runs again."""
        path = self.fold_path(folder, fold)
        if not path.exists():
            return None
        preds = self.predictions_path(folder, fold)
        try:
            record = read_verified(path)
            if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
                raise DamagedFile(path, "no metrics")
            if predictions:
                if not preds.exists():
                    raise DamagedFile(path, f"{preds.name} is missing")
                if not isinstance(read_verified(preds), dict):
                    raise DamagedFile(preds, "not a predictions record")
            return record
        except StoreError as e:
            damaged = getattr(e, "path", path)
            companion = path if damaged == preds else preds
            reason = getattr(e, "reason", str(e))
            quarantine(damaged, reason, f"fold {fold} will be run again", with_=[companion] if predictions else ())
            return None

    def save_fold(self, folder: Path, fold: int, record: dict[str, Any], predictions: dict[str, Any] | None) -> None:
        if predictions is not None:
            atomic_write_json(self.predictions_path(folder, fold), predictions)
        atomic_write_json(self.fold_path(folder, fold), record)

    @staticmethod
    def error_path(folder: Path, fold: int) -> Path:
        return folder / f"fold-{fold}.error.json"

    def save_error(self, folder: Path, fold: int, error: dict[str, Any]) -> None:
        """Record a failed fold; it is not "stored" (a rerun tries it again)."""
        atomic_write_json(self.error_path(folder, fold), error)

    def clear_error(self, folder: Path, fold: int) -> None:
        self.error_path(folder, fold).unlink(missing_ok=True)

    def load_error(self, folder: Path, fold: int) -> dict[str, Any] | None:
        path = self.error_path(folder, fold)
        if not path.exists():
            return None
        return self.verify(path, "the failure is recorded again when the fold is run")

    def load_predictions(self, folder: Path, fold: int) -> dict[str, Any]:
        return read_verified(self.predictions_path(folder, fold))

    def verify(self, path: Path, action: str) -> Any | None:
        """A stored record, checked; None when absent, or when damaged: then it is moved aside with a one-line
        warning ending in ``action`` (what happens instead: rewritten, recomputed, ...)."""
        return read_checked(path, action)

    def plan(self) -> dict[str, Any]:
        path = self.root / "plan.json"
        if not path.exists():
            raise StoreError(f"{self.root} is not a benchkit run directory (no plan.json)")
        try:
            return read_verified(path)
        except DamagedFile as e:
            raise StoreError(f"{e}; `benchkit run` on this directory rewrites it") from None
