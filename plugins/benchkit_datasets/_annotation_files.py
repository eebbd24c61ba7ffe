"""Reading annotation files for the procedural loaders: every problem is a one-line ``DataError`` naming the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from benchkit.api import DataError, file_sha256


def existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    return path


def read_json(path: Path, what: str) -> Any:
    existing(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None


def read_csv(path: Path, what: str) -> list[list[str]]:
    existing(path, what)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [row for row in csv.reader(f) if row and any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]})") from None


def malformed(path: Path, detail: str) -> DataError:
    return DataError(f"{path}: malformed annotation ({detail})")


def fingerprints(paths: list[Path]) -> dict[str, str]:
    """File name → content hash, for the dataset's identity."""
    return {p.name: file_sha256(p)[:16] for p in paths}


def class_names(named: dict[int, str], prefix: str) -> tuple[str, ...]:
    """Names for classes ``0 .. max``: the annotated name, or ``"<prefix> <i>"`` for a class never seen."""
    size = max(named, default=-1) + 1
    return tuple(named.get(i, f"{prefix} {i}") for i in range(size))
