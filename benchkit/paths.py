"""Where benchkit keeps its caches, and data paths from untrusted files that must stay inside the folder the user
named.

A relative path read from a dataset's own files is joined to the dataset root and resolved (``..`` and symbolic
links followed); if the result is not inside the resolved root it is refused with one line, so a crafted
annotation cannot make benchkit read ``/etc/passwd`` or another user's files.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchkit.errors import DataError


def default_cache_dir() -> Path:
    """``$BENCHKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/benchkit`` (``~/.cache/benchkit``): features, decoded data,
    the plugin manifest."""
    env = os.environ.get("BENCHKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "benchkit"


def resolve_within(
    root: str | Path, relative: str | Path, source: str | Path | None = None, *, follow_links: bool = True
) -> Path:
    """``root / relative``, resolved, or a ``DataError`` naming ``source`` (the file that named the path).

    ``follow_links=False`` normalises ``..`` without resolving symbolic links: a name read from a data file still
    cannot climb out of ``root``, while links the user placed inside ``root`` (a features folder of symlinks to
    another disk) keep working."""
    if follow_links:
        base = Path(root).expanduser().resolve()
        target = (base / relative).resolve()
    else:
        base = Path(os.path.normpath(Path(root).expanduser().absolute()))
        target = Path(os.path.normpath(base / relative))
    if target != base and base not in target.parents:
        named = f" named in {source}" if source else ""
        raise DataError(f"path {str(relative)!r}{named} leads outside the dataset root {base}")
    return target
