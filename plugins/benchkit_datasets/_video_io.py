"""Frame decoding and resizing with PyAV (FFmpeg), shared by every recorded-video dataset (issue 5).

Videos (mp4, webm, gif, ...) and still images (png, jpg, webp: FFmpeg's image decoders) are decoded to RGB and
resized in one pass with FFmpeg's area filter (exact on solid blocks, antialiased on downscaling). ``size`` is
an int (a square ``size x size``: the aspect ratio is not kept, like the reference's DINOv2 preprocessing,
spec invpatch.md §4), a pair ``[height, width]``, or ``None`` (native resolution). A file that is missing or cannot
be decoded is a one-line ``DataError`` naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np

from benchkit.api import DataError

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".gif")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")
INTERPOLATION = "AREA"
_DIGEST_BYTES = 1 << 16


def parse_size(size: int | Iterable[int] | None) -> tuple[int, int] | None:
    """``224`` → ``(224, 224)``; ``[h, w]`` → ``(h, w)``; ``None`` → ``None`` (native). ``ValueError`` otherwise."""
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be a positive int, [height, width] or null, got {size!r}")
    return hw


def _rgb(frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    h, w = size
    return frame.reformat(width=w, height=h, format="rgb24", interpolation=INTERPOLATION).to_ndarray()


def resize(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 frame resized (a copy; the same filter as decoding uses)."""
    if size is None or image.shape[:2] == size:
        return np.array(image, dtype=np.uint8)
    return _rgb(av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint8), format="rgb24"), size)


def _decoded(path: Path) -> Iterator[av.VideoFrame]:
    if not path.is_file():
        raise DataError(f"missing file: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"no video stream in {path}")
            yield from container.decode(video=0)
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise DataError(f"cannot decode {path}: {getattr(e, 'strerror', None) or e}") from None


def decode_video(path: str | Path, size: tuple[int, int] | None, limit: int | None = None) -> np.ndarray:
    """The first ``limit`` frames (all when ``None``) of a video file, ``(N, H, W, 3)`` uint8."""
    path = Path(path)
    frames = []
    for frame in _decoded(path):
        frames.append(_rgb(frame, size))
        if limit is not None and len(frames) >= limit:
            break
    if not frames:
        raise DataError(f"no frames in {path}")
    return np.stack(frames)


def decode_image(path: str | Path, size: tuple[int, int] | None) -> np.ndarray:
    """One still image, ``(H, W, 3)`` uint8."""
    path = Path(path)
    for frame in _decoded(path):
        return _rgb(frame, size)
    raise DataError(f"no image in {path}")


def quick_digest(path: Path, chunk: int = _DIGEST_BYTES) -> str:
    """A cheap content identity for a large file: its size and the SHA-256 of its first and last ``chunk`` bytes
    (64 KiB by default); cheap enough for thousands of files, and any re-encoding or re-extraction changes it in
    practice (headers carry shapes, tails the last values)."""
    try:
        size = path.stat().st_size
        h = hashlib.sha256(str(size).encode())
        with path.open("rb") as f:
            h.update(f.read(chunk))
            if size > chunk:
                f.seek(max(chunk, size - chunk))
                h.update(f.read(chunk))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    return h.hexdigest()[:20]
