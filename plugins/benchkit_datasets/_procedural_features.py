"""Per-video precomputed features on disk, and the pooling that turns them into clip tokens (docs/procedural.md).

Layout: one file per video under the ``features`` folder, named ``<stem>.npy``, ``<stem>.npz`` or
``<stem>.safetensors`` (the stem is the video id, or a name the feature release gives it; each loader lists the
stems it accepts, and two files for one video are an error). Each holds a 2-D
``(N, E)`` array: N time steps at ``fps`` steps per second (the S3D release of CrossTask / COIN / NIV has one 512-d
feature per second; per-frame SigLIP CLS tokens at 16 frames per clip are another example), feature ``i`` covering
``[i, i + 1) / fps`` seconds. An ``.npz`` (or a zip archive named ``.npy``, as in that S3D release) and a
``.safetensors`` file name their array by ``key``: by default the only array, else ``frames_features`` or
``features``. Pickled objects are never loaded.

Pooling (spec vedit.md §3): a span ``[a, b)`` in feature steps cut into ``parts`` equal sub-spans, each the mean of
the features whose bins overlap it (at least the one containing its start), clamped to the video; a state feature
is the mean over ``[t - r, t + r]`` (SCHEMA's start / end states with r = 1).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from benchkit.api import DataError, resolve_within

EXTENSIONS = (".npy", ".npz", ".safetensors")
DEFAULT_KEYS = ("frames_features", "features")


def find_feature_file(folder: Path, stems: tuple[str, ...], source: str | None = None) -> Path | None:
    """The one ``<stem><ext>`` file in ``folder`` for a video that may be named by any of ``stems`` (e.g. COIN's
    ``<vid>`` and ``<class>_<recipe_type>_<vid>``), or ``None``; two such files are an error (one line), since
    either could be the video's. A stem (a video id read from ``source``, an annotation file) that leads outside
    ``folder`` is refused with one line (``benchkit.paths.resolve_within``); symbolic links the user placed in
    ``folder`` are followed."""
    found = []
    for stem in dict.fromkeys(stems):
        for ext in EXTENSIONS:
            path = resolve_within(folder, f"{stem}{ext}", source, follow_links=False)
            if path.is_file():
                found.append(path)
    if len(found) > 1:
        raise DataError(f"{folder}: {found[0].name} and {found[1].name} are both features of one video; keep one")
    return found[0] if found else None


def _pick_key(keys: list[str], key: str | None, path: Path) -> str:
    if key is not None:
        if key not in keys:
            raise DataError(f"{path}: no array {key!r} (it holds {', '.join(keys) or 'nothing'})")
        return key
    if len(keys) == 1:
        return keys[0]
    for k in DEFAULT_KEYS:
        if k in keys:
            return k
    raise DataError(f"{path}: holds several arrays ({', '.join(keys)}); name one with feature_key")


def _npz_member(path: Path, key: str | None) -> tuple[zipfile.ZipFile, str]:
    archive = zipfile.ZipFile(path)
    names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    return archive, _pick_key(names, key, path) + ".npy"


def feature_shape(path: Path, key: str | None = None) -> tuple[int, ...]:
    """The array's shape, read from its header only."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                return tuple(f.get_slice(_pick_key(list(f.keys()), key, path)).get_shape())
        if zipfile.is_zipfile(path):
            archive, member = _npz_member(path, key)
            with archive, archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    return tuple(np.lib.format.read_array_header_1_0(f)[0])
                if version == (2, 0):
                    return tuple(np.lib.format.read_array_header_2_0(f)[0])
                return np.lib.format.read_array(f, allow_pickle=False).shape
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: unreadable feature file ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def load_features(path: Path, key: str | None = None) -> np.ndarray:
    """The ``(N, E)`` float32 array of one video."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                array = f.get_tensor(_pick_key(list(f.keys()), key, path))
        elif zipfile.is_zipfile(path):
            archive, member = _npz_member(path, key)
            with archive, archive.open(member) as f:
                array = np.lib.format.read_array(f, allow_pickle=False)
        else:
            array = np.load(path, allow_pickle=False)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: unreadable feature file ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if array.ndim != 2 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{path}: expected a numeric (N, E) array with N >= 1, got {array.dtype} {array.shape}")
    return np.asarray(array, dtype=np.float32)




def pool_span(series: np.ndarray, start: float, end: float, parts: int) -> np.ndarray:
    """``(parts, E)``: ``[start, end)`` (in feature steps) cut into ``parts`` equal sub-spans, each averaged over
    the steps whose bins ``[i, i + 1)`` overlap it; an empty sub-span takes the step containing its start. Steps
    are clamped to ``[0, N)``."""
    n = len(series)
    edges = np.linspace(start, max(start, end), parts + 1)
    out = np.empty((parts, series.shape[1]), dtype=np.float32)
    for j in range(parts):
        lo = min(max(math.floor(edges[j]), 0), n - 1)
        hi = min(max(math.ceil(edges[j + 1]), lo + 1), n)
        out[j] = series[lo:hi].mean(axis=0)
    return out


def state_feature(series: np.ndarray, step: int, radius: int) -> np.ndarray:
    """``(E,)``: the mean over steps ``[step - radius, step + radius]`` clamped to ``[0, N)`` (SCHEMA, M = 2r)."""
    lo, hi = max(0, step - radius), min(step + radius + 1, len(series))
    return series[lo:hi].mean(axis=0)
