"""Verified files: whatever benchkit writes to a run directory or a cache is written atomically with a checksum, and
whatever it reads back is checked before use. One place for the run store, the feature cache, profiles and the
datasets' frame and episode caches (docs/reliability.md).

- **JSON records** (fold records and predictions, ``cell.json``, ``plan.json``, ``profile.json``, baselines, cache
  metadata) carry their checksum inside: ``"_checksum": "sha256:<hex>"``, the SHA-256 of the record's canonical form
  (keys sorted, no spaces, ASCII) without that key. The file stays plain, indented JSON. A flipped byte inside a
  number still parses, so parsing alone proves nothing; the checksum does. A record without ``_checksum`` (written by
  an older benchkit, or by hand) is read as it is, unless a field holds what looks like a checksum (the key's own
  name was hit).
- **Binary cache files** (``.npy``, ``.npz``) get a ``<name>.sha256`` sidecar in ``sha256sum`` format (``sha256sum
  -c`` checks it), written before the file is renamed into place, so a present file always has its sidecar. Files
  over ``FULL_VERIFY_BYTES`` are checked by their format only (``np.load`` refuses a truncated array).
- **Temporary files** are named ``.<name>.<host>-<pid>-<random>.tmp[.ext]``; a later process removes those whose
  writer is dead (``sweep_temporaries``), so a SIGKILL anywhere leaves nothing behind for long.
- **Damage** is never used: ``quarantine`` moves the file aside to ``<name>.corrupt`` and says so in one line
  (``warning: PATH is damaged (REASON); moved aside to NAME.corrupt; ACTION``); the caller recomputes or re-runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchkit.errors import StoreError

log = logging.getLogger("benchkit")

CHECKSUM_KEY = "_checksum"
FULL_VERIFY_BYTES = 256 << 20  # files up to this size are hash-checked on every load
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
STALE_SECONDS = 24 * 3600  # a temporary file of another host is removed once this old
_CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}")
_TEMP = re.compile(r"^\..+\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]+\.tmp(?:\.\w+)?$")
_LEGACY_TEMP = (  # names used before this module: frame/synthetic caches, feature cache, run store (mkstemp)
    re.compile(r"^\..+\.(?P<pid>\d+)\.tmp\.np[yz]$"),
    re.compile(r"^\.tmp-[0-9a-f]+-(?P<pid>\d+)$"),
)
_MKSTEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp names of older runs


class DamagedFile(StoreError):
    """A stored file that fails its check: unreadable, truncated, not JSON, or not matching its checksum."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"corrupt stored file {path}: {reason}")


# -- writing -----------------------------------------------------------------------------------------------------


def temp_path(path: Path, suffix: str = "") -> Path:
    """A temporary name beside ``path`` that says who wrote it (host and pid), for ``sweep_temporaries``."""
    return path.with_name(f".{path.name}.{HOST}-{os.getpid()}-{secrets.token_hex(3)}.tmp{suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name, fsync it and rename it over ``path``: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def payload_checksum(payload: Any) -> str:
    return "sha256:" + hashlib.sha256(_canonical(payload)).hexdigest()


def write_verified(path: Path, payload: dict[str, Any]) -> None:
    """Write a JSON record atomically with its checksum embedded (``_checksum``); indented, keys sorted."""
    if not isinstance(payload, dict):
        raise TypeError(f"a verified record is a JSON object, not {type(payload).__name__}")
    data = json.loads(json.dumps({k: v for k, v in payload.items() if k != CHECKSUM_KEY}, default=str))
    body = json.dumps(data, indent=1, sort_keys=True)  # the checksum goes last, after what a reader looks for
    tail = f' "{CHECKSUM_KEY}": "{payload_checksum(data)}"\n}}\n'
    atomic_write_text(path, (body[:-2] + ",\n" if data else "{\n") + tail)


def checksum_path(path: Path) -> Path:
    """The ``sha256sum``-format sidecar of a binary cache file."""
    return path.with_name(path.name + ".sha256")


def write_file(path: Path, write: Callable[[Path], None]) -> None:
    """Create ``path`` atomically through ``write(tmp)`` (the temporary name ends like ``path``, as ``np.save`` and
    ``np.savez`` want), with its ``.sha256`` sidecar written before the file is renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, path.suffix)
    try:
        write(tmp)
        _fsync(tmp)
        atomic_write_text(checksum_path(path), f"{file_sha256(tmp)}  {path.name}\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- reading -----------------------------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB chunks (cache files, model weights)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_verified(path: Path) -> Any:
    """A stored JSON record, checked: ``DamagedFile`` when it does not parse or does not match its checksum; a
    missing file is a ``StoreError``. The checksum key is removed from what is returned."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise StoreError(f"missing stored file: {path}") from None
    except IsADirectoryError:
        raise DamagedFile(path, "a directory, not a file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"not valid JSON: {e}") from None
    if not isinstance(data, dict):
        return data  # not written by write_verified (older or hand-written): parses, nothing more to check
    if CHECKSUM_KEY in data:
        stored = data.pop(CHECKSUM_KEY)
        if stored != payload_checksum(data):
            raise DamagedFile(path, "checksum mismatch")
    elif any(isinstance(v, str) and _CHECKSUM.fullmatch(v) for v in data.values()):
        raise DamagedFile(path, "checksum field damaged")
    return data


def check_file(path: Path, verify: bool | None = None) -> str | None:
    """Why a binary cache file may not be used (no or damaged sidecar, checksum mismatch), or None when it is fine.
    ``verify``: hash it whatever its size (True), never (False), or when under ``FULL_VERIFY_BYTES`` (None)."""
    path = Path(path)
    try:
        text = checksum_path(path).read_text()
    except FileNotFoundError:
        return "no checksum (written by an older benchkit, or lost)"
    except (OSError, UnicodeDecodeError) as e:
        return f"unreadable checksum: {e}"
    match = re.fullmatch(r"([0-9a-f]{64})  (.+)\n", text)
    if not match or match.group(2) != path.name:
        return "damaged checksum file"
    try:
        if verify is False or (verify is None and path.stat().st_size > FULL_VERIFY_BYTES):
            return None
        if file_sha256(path) != match.group(1):
            return "checksum mismatch"
    except OSError as e:
        return f"unreadable: {e}"
    return None


# -- healing -----------------------------------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def quarantine(path: Path, reason: str, action: str, *, with_: Iterable[Path] = (), drop: Iterable[Path] = ()) -> Path:
    """Move a damaged file (or folder) aside to ``<name>.corrupt`` (replacing an older one), with the files of
    ``with_`` moved likewise and those of ``drop`` removed; log one line saying so and what happens next."""
    path = Path(path)
    aside = path.with_name(path.name + ".corrupt")
    for src in (path, *map(Path, with_)):
        dst = src.with_name(src.name + ".corrupt")
        try:
            if dst.exists():
                _remove(dst)
            os.replace(src, dst)
        except FileNotFoundError:
            pass  # another process moved it first
        except OSError:
            _remove(src)  # cannot be moved (another filesystem, permissions): never use it
    for extra in drop:
        _remove(Path(extra))
    log.warning(f"{path} is damaged ({reason}); moved aside to {aside.name}; {action}")
    return aside


def read_checked(path: Path, action: str) -> Any | None:
    """A stored JSON record, checked; None when it is absent, or damaged: then it is moved aside with one warning
    line ending in ``action`` (what happens instead: written again, recomputed, left out of a report)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return read_verified(path)
    except DamagedFile as e:
        quarantine(path, e.reason, action)
        return None


def is_temporary(name: str) -> bool:
    """Whether a file name is one of benchkit's temporary names (now or formerly)."""
    return bool(_TEMP.match(name) or _MKSTEMP.match(name) or any(p.match(name) for p in _LEGACY_TEMP))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temporaries(folder: Path, *, owned: bool = False) -> list[Path]:
    """Remove the temporary files and folders in ``folder`` left by dead writers (a killed run): those of this host
    whose pid is gone, those of other hosts after ``STALE_SECONDS``. ``owned``: the caller holds the folder's lock,
    so old unnamed temporaries (``mkstemp``, before this module) go too. Returns what was removed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _TEMP.match(name) or next((m for p in _LEGACY_TEMP if (m := p.match(name))), None)
        path = Path(folder) / name
        if match:
            host = match.groupdict().get("host") or HOST
            if host == HOST:
                stale = not _alive(int(match.group("pid")))
            else:
                try:
                    stale = time.time() - path.lstat().st_mtime > STALE_SECONDS
                except OSError:
                    continue
        else:
            stale = owned and bool(_MKSTEMP.match(name))
        if stale:
            _remove(path)
            removed.append(path)
    return removed


_SWEPT: set[str] = set()


def sweep_once(folder: Path) -> None:
    """``sweep_temporaries(folder)`` the first time this process touches ``folder`` (cache folders)."""
    key = f"{os.getpid()}:{folder}"
    if key not in _SWEPT:
        _SWEPT.add(key)
        sweep_temporaries(folder)
