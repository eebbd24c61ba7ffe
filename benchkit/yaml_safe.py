"""Bounded YAML reading for user files (grids, overrides, registry presets).

``yaml.safe_load`` is safe from code execution but not from size: aliases share nodes, so a few hundred bytes
("billion laughs") expand to 10^9 nodes once anything walks, copies or hashes the tree; a few thousand nested
brackets end in a RecursionError; a FIFO blocks the reader; a 100k-digit integer raises ValueError. Here every
document is read within fixed limits, checked while it is composed, and every problem is a :class:`ConfigError`
naming the source, line and column. The limits are documented in docs/grid.md ("Limits").
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from benchkit.errors import ConfigError

MAX_BYTES = 256 * 1024
"""Largest file (or override text) read: ~100x the largest grid in benchmarks/; pure-Python YAML reads it in <1 s."""
MAX_NODES = 10_000
"""Nodes of the document with every alias expanded (benchmark grids: < 200; registry.yaml: ~1,000)."""
MAX_DEPTH = 64
"""Nesting levels, aliases expanded (benchmark grids: 4)."""
MAX_NUMBER_CHARS = 100
"""Characters of an int or float scalar (Python refuses int strings over 4,300 digits; hex ones it builds)."""

_ALLOWED = ("null", "bool", "int", "float", "str", "seq", "map")
_TAG = "tag:yaml.org,2002:"


class LimitError(yaml.MarkedYAMLError):
    """A document over one of the limits (a YAML error with a position, so it is reported like one)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts expanded nodes and depth while composing, refuses recursive aliases and builds only
    JSON-like values (dates stay strings; ``!!binary``, ``!!set``, ``!!timestamp``, ... are refused)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0  # nodes composed so far, an alias counting as the whole subtree it stands for
        self._depth = 0
        self._deepest = 0
        self._sizes: dict[str, tuple[int, int]] = {}  # finished anchor -> (expanded nodes, height)

    def compose_document(self) -> yaml.Node:
        self._sizes = {}
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.anchors and event.anchor not in self._sizes:
                raise ComposerError(None, None, f"alias *{event.anchor} refers to a node that contains it "
                                    "(recursive)", event.start_mark)
            size, height = self._sizes.get(event.anchor, (1, 0))
            self._grow(size, event.start_mark)
            self._reach(self._depth + 1 + height, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        self._reach(self._depth, event.start_mark)
        self._grow(1, event.start_mark)
        start, deepest = self._nodes - 1, self._deepest
        self._deepest = self._depth
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._sizes[event.anchor] = (self._nodes - start, self._deepest - self._depth)
        self._depth -= 1
        self._deepest = max(deepest, self._deepest)
        return node

    def _grow(self, size: int, mark: yaml.Mark) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            raise LimitError(None, None, f"more than {MAX_NODES:,} nodes with aliases expanded (the limit)", mark)

    def _reach(self, depth: int, mark: yaml.Mark) -> None:
        self._deepest = max(self._deepest, depth)
        if depth > MAX_DEPTH:
            raise LimitError(None, None, f"nested deeper than {MAX_DEPTH} levels (the limit)", mark)


# Dates and times stay strings: a grid has no date fields, and a datetime is not JSON.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TAG + "timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _checked(name: str):
    base = yaml.SafeLoader.yaml_constructors[_TAG + name]

    def construct(loader: _Loader, node: yaml.Node) -> Any:
        if name in ("int", "float") and isinstance(node.value, str) and len(node.value) > MAX_NUMBER_CHARS:
            raise LimitError(None, None, f"a number of {len(node.value):,} characters (limit {MAX_NUMBER_CHARS})",
                             node.start_mark)
        try:
            return base(loader, node)
        except (ValueError, KeyError, OverflowError) as e:  # `!!int abc`, `!!bool maybe`
            raise ConstructorError(None, None, f"cannot read this value as !!{name} ({e})", node.start_mark) from None

    return construct


def _refused(loader: _Loader, node: yaml.Node) -> Any:
    raise ConstructorError(None, None, f"tag {node.tag.replace(_TAG, '!!')} is not supported here (plain "
                           "strings, numbers, booleans, null, lists and mappings only)", node.start_mark)


for _name in _ALLOWED:
    if _name not in ("seq", "map"):
        _Loader.add_constructor(_TAG + _name, _checked(_name))
for _tag in list(yaml.SafeLoader.yaml_constructors):
    if _tag is not None and _tag.removeprefix(_TAG) not in _ALLOWED:
        _Loader.add_constructor(_tag, _refused)


def loads(text: str | bytes, source: str) -> Any:
    """Parse one YAML document within the limits; any problem is a one-line ``ConfigError`` naming ``source``."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters, over the {MAX_BYTES // 1024} KiB limit")
    loader = None
    try:  # what yaml.load(text, Loader=_Loader) does, spelled out: _Loader is a SafeLoader with limits
        loader = _Loader(text)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        kind = "too large" if isinstance(e, LimitError) else "invalid YAML"
        problem = e.problem or str(e)
        if e.context:  # "while parsing a flow sequence (line 1), expected ',' or ']'"
            seen = f" (line {e.context_mark.line + 1})" if e.context_mark and e.context_mark is not mark else ""
            problem = f"{e.context}{seen}, {problem}"
        raise ConfigError(f"{where}: {kind}: {one_line(problem)}") from None
    except yaml.YAMLError as e:  # a ReaderError (control characters) has no problem_mark
        raise ConfigError(f"{source}: invalid YAML: {one_line(str(e))}") from None
    except RecursionError:  # not expected within MAX_DEPTH; kept as a last guard
        raise ConfigError(f"{source}: too large: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(path: str | Path, what: str = "file") -> str:
    """A regular UTF-8 file of at most ``MAX_BYTES``; a directory, FIFO or device is refused before it is read."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else (
            "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a plain file")
        raise ConfigError(f"{path}: is {kind}, not a regular {what}")
    if info.st_size > MAX_BYTES:
        raise ConfigError(f"{path}: {info.st_size:,} bytes, over the {MAX_BYTES // 1024} KiB limit of a {what}")
    try:  # O_NONBLOCK: should the path become a FIFO after the stat, opening it does not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ConfigError(f"{path}: not a regular {what}")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: over the {MAX_BYTES // 1024} KiB limit of a {what}")
    try:
        return data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def load_file(path: str | Path, what: str = "file") -> Any:
    """``read_text`` then ``loads``: the one way user YAML files are read."""
    return loads(read_text(path, what), str(path))


def check_tree(value: Any, source: str) -> None:
    """Refuse parsed data beyond ``MAX_NODES`` nodes or ``MAX_DEPTH`` levels (shared objects count each time they
    are reached, as a deep copy would): data assembled outside :func:`loads` (overrides, API callers)."""
    nodes, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ConfigError(f"{source}: too large: more than {MAX_NODES:,} nodes (the limit)")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: too large: nested deeper than {MAX_DEPTH} levels (the limit)")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed to single spaces, cut to ``limit`` characters: safe to show in a one-line error."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
