"""The plugin manifest: what each installed entry point registers, kept so that listing plugins imports none.

``benchkit ls``, ``--help`` and ``schema`` answer at once, yet a plugin module imports torch and more. A process
that imports a plugin records what its ``benchkit_register`` added (kinds, names, descriptions, metadata, presets)
and which hooks it implements, in ``<cache>/plugins/manifest-<environment>.json``; later processes take the names
from there and import a plugin only when one of its names is built or its signature checked (``Entry.factory``),
or when one of its hooks is called. ``benchkit plugins`` imports every plugin, and refreshes the manifest.

A record is used only while it describes the code that would be imported:

- the environment is unchanged: the interpreter, and the modification time of every ``sys.path`` folder
  (installing, upgrading or removing any distribution changes its folder); the entry-point list is cached under
  the same condition;
- the entry point is unchanged: name, target, distribution, version;
- the plugin's files are unchanged: size and modification time of every file of its top-level package (an
  editable install edited in place).

A plugin that fails to import is never recorded (it is retried, and reported, every time), nor one whose
registrations hold values other than plain data (it is then imported at start-up, as before the manifest).
Registry files (``registry.yaml``, ``BENCHKIT_REGISTRY``) are kept parsed, keyed by their size and modification
time. ``BENCHKIT_PLUGIN_MANIFEST=0`` turns the manifest off. Nothing here imports a plugin.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchkit.paths import default_cache_dir

VERSION = 1
GROUP = "benchkit"  # = hookspecs.PROJECT, not imported from there: that module imports pluggy
MAX_FILES = 5000  # a plugin inside a larger package than this is not recorded (stat-ing it would cost too much)


@dataclass(frozen=True)
class EntryPoint:
    """One entry point of the ``benchkit`` group: ``name = value`` of distribution ``dist`` at ``version``."""

    name: str
    value: str
    dist: str
    version: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    def load(self) -> Any:
        return metadata.EntryPoint(self.name, self.value, GROUP).load()

    @property
    def key(self) -> str:
        return f"{self.name} = {self.value}"


class Uncacheable(Exception):
    """A value that is not plain data (str, number, bool, None, and lists, tuples and str-keyed dicts of them)."""


def encode(value: Any) -> Any:
    """Plain data as JSON; tuples survive as ``{"__tuple__": [...]}`` (registrations compare ``levels`` as tuples)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if type(value) is tuple:
        return {"__tuple__": [encode(v) for v in value]}
    if type(value) is list:
        return [encode(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value) and "__tuple__" not in value:
        return {k: encode(v) for k, v in value.items()}
    raise Uncacheable(repr(value)[:80])


def decode(value: Any) -> Any:
    if type(value) is list:
        return [decode(v) for v in value]
    if type(value) is dict:
        if len(value) == 1 and "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        return {k: decode(v) for k, v in value.items()}
    return value


def read_entry_points() -> list[EntryPoint]:
    """The ``benchkit`` entry points of every installed distribution, from package metadata (no imports)."""
    seen, out = set(), []
    for ep in metadata.entry_points(group=GROUP):  # an editable install can expose the same distribution twice
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            out.append(EntryPoint(ep.name, ep.value, ep.dist.name if ep.dist else "?",
                                  ep.dist.version if ep.dist else "?"))
    return out


def _search_path() -> list[str]:
    """``sys.path`` less the script's own folder (the working directory under ``python -m``), whose files change
    with every run yet hold no installed distribution."""
    return sys.path if sys.flags.safe_path else sys.path[1:]


def environment() -> tuple[str, str]:
    """``(name, fingerprint)``: the manifest file's name (interpreter and search path) and what must not change
    for its records to hold (the search path's folders' modification times)."""
    paths = _search_path()
    stamps = []
    for p in paths:
        try:
            stamps.append((p, os.stat(p or ".").st_mtime_ns))
        except OSError:
            continue
    name = hashlib.sha256(repr((sys.prefix, paths)).encode()).hexdigest()[:16]
    fingerprint = hashlib.sha256(repr((VERSION, sys.version, stamps)).encode()).hexdigest()[:16]
    return name, fingerprint


@functools.cache
def package_stamp(module: str) -> str | None:
    """A hash of the size and modification time of every file of ``module``'s top-level package (bytecode caches
    aside), found without importing it; ``None`` when it cannot be found or is too large to stat cheaply."""
    top = module.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is executed
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    stamps: list[tuple[str, int, int]] = []
    roots = list(spec.submodule_search_locations or [])
    files = [] if roots else [spec.origin] if spec.origin and os.path.isfile(spec.origin) else []
    if not roots and not files:
        return None
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            files += [os.path.join(folder, n) for n in sorted(names) if not n.endswith((".pyc", ".pyo"))]
            if len(files) > MAX_FILES:
                return None
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamps.append((path, st.st_size, st.st_mtime_ns))
    return hashlib.sha256(repr(stamps).encode()).hexdigest()[:16]


class Manifest:
    """The records of one environment, read once per process and written back when a record changed."""

    def __init__(self, path: Path | None, fingerprint: str = "", data: dict[str, Any] | None = None) -> None:
        self.path, self.fingerprint = path, fingerprint
        data = data if data and data.get("version") == VERSION and data.get("environment") == fingerprint else {}
        self.plugins: dict[str, Any] = data.get("plugins", {})
        self.files: dict[str, Any] = data.get("files", {})
        self._entry_points: list[EntryPoint] | None = (
            [EntryPoint(*ep) for ep in data["entry_points"]] if "entry_points" in data else None
        )
        self.changed = False

    @classmethod
    def open(cls) -> Manifest:
        """This environment's manifest, or an empty one that is never written when ``BENCHKIT_PLUGIN_MANIFEST=0``."""
        if os.environ.get("BENCHKIT_PLUGIN_MANIFEST", "").strip() in ("0", "false", "no", "off"):
            return cls(None)
        name, fingerprint = environment()
        path = default_cache_dir() / "plugins" / f"manifest-{name}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None
        return cls(path, fingerprint, data if isinstance(data, dict) else None)

    def entry_points(self) -> list[EntryPoint]:
        if self._entry_points is None:
            self._entry_points = read_entry_points()
            self.changed = True
        return self._entry_points

    def record(self, ep: EntryPoint) -> dict[str, Any] | None:
        """What ``ep`` registered when it was last imported, if that still holds."""
        record = self.plugins.get(ep.key)
        if self.path is None or not isinstance(record, dict):
            return None
        if (record.get("dist"), record.get("version")) != (ep.dist, ep.version):
            return None
        stamp = package_stamp(ep.module)
        return record if stamp is not None and record.get("files") == stamp else None

    def put(self, ep: EntryPoint, hooks: list[str], ops: list[list[Any]]) -> None:
        stamp = package_stamp(ep.module)
        if self.path is None or stamp is None:
            return
        self.plugins[ep.key] = {"dist": ep.dist, "version": ep.version, "files": stamp, "hooks": hooks, "ops": ops}
        self.changed = True

    def drop(self, ep: EntryPoint) -> None:
        if self.plugins.pop(ep.key, None) is not None:
            self.changed = True

    def registry_file(self, path: Path, parse: Callable[[Path], Any]) -> Any:
        """``parse(path)``, or what it returned for this file as it is now (same size, time, inode, mode)."""
        try:
            st = os.stat(path)
        except OSError:
            return parse(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]
        key = str(Path(path).absolute())
        cached = self.files.get(key)
        if self.path is not None and isinstance(cached, dict) and cached.get("stamp") == stamp:
            return decode(cached["data"])
        data = parse(path)
        try:
            self.files[key] = {"stamp": stamp, "data": encode(data)}
            self.changed = self.path is not None
        except Uncacheable:
            pass
        return data

    def save(self) -> None:
        """Write the manifest atomically when something changed; a cache that cannot be written is no error."""
        if self.path is None or not self.changed:
            return
        # as the environment is now: importing plugins may have added a __pycache__ folder to a sys.path folder
        self.fingerprint = environment()[1]
        data = {
            "version": VERSION,
            "environment": self.fingerprint,
            "entry_points": [[ep.name, ep.value, ep.dist, ep.version] for ep in self._entry_points or []],
            "plugins": self.plugins,
            "files": self.files,
        }
        if self._entry_points is None:
            del data["entry_points"]
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return
        self.changed = False
