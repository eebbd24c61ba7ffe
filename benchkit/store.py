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
      baselines/<name>-<dataset-key>/fold-<k>.json
      leaderboard.md

Every file is written to a temporary name, fsynced and renamed, so a killed run never leaves a partial file that
reads as valid.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchkit.errors import StoreError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are shared like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Read a stored JSON file; a corrupt one is a one-line ``StoreError`` naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"missing stored file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"corrupt stored file {path}: {e}") from None


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

    # -- folds ----------------------------------------------------------------------------------------------
    def load_fold(self, folder: Path, fold: int) -> dict[str, Any] | None:
        """A stored fold, or None when it is not stored. A corrupt file (not written by benchkit's atomic path:
        edited or damaged on disk) is moved aside to ``*.corrupt`` and reported as not stored."""
        path = self.fold_path(folder, fold)
        if not path.exists():
            return None
        try:
            record = read_json(path)
            if not isinstance(record, dict) or "metrics" not in record:
                raise StoreError(f"corrupt stored file {path}: no metrics")
            return record
        except StoreError:
            path.replace(path.with_suffix(".json.corrupt"))
            return None

    def save_fold(self, folder: Path, fold: int, record: dict[str, Any], predictions: dict[str, Any] | None) -> None:
        if predictions is not None:
            atomic_write_json(folder / f"fold-{fold}.predictions.json", predictions)
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
        try:
            return read_json(path)
        except StoreError as e:
            return {"type": "StoreError", "message": str(e)}

    def load_predictions(self, folder: Path, fold: int) -> dict[str, Any]:
        return read_json(folder / f"fold-{fold}.predictions.json")

    def plan(self) -> dict[str, Any]:
        path = self.root / "plan.json"
        if not path.exists():
            raise StoreError(f"{self.root} is not a benchkit run directory (no plan.json)")
        return read_json(path)
