"""Plugin manager: guarded entry-point loading, the registry of factories, presets and did-you-mean errors.

Every plugin, first-party ones included, is a module listed under the ``benchkit`` entry-point group that
implements ``benchkit_register(registry)``. Loading and registering are guarded per entry point: a broken plugin
is recorded in ``Registry.failures`` (``benchkit plugins`` shows it) and the others work.

``BENCHKIT_DISABLE_PLUGIN_AUTOLOAD=1`` turns autoloading off, as pytest's variable of the same shape does; then
only the entry points named in ``BENCHKIT_PLUGINS`` (comma-separated) are loaded.

Loading is lazy: names, descriptions, metadata and presets of a plugin come from the plugin manifest
(``benchkit.registry.manifest``) when it holds a current record, and the plugin module is imported only when one of its
names is built or its signature checked (``Entry.factory``), or one of its hooks is called. A plugin without a
record is imported at once and recorded for the next process.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from benchkit import yaml_safe
from benchkit.errors import ConfigError, PluginError
from benchkit.registry import hookspecs
from benchkit.registry.manifest import EntryPoint, Manifest, Uncacheable, decode, encode

log = logging.getLogger("benchkit")

KINDS: tuple[str, ...] = ("dataset", "backbone", "aggregator", "predictor", "metric", "executor")
# Positional context the core passes before the user's keyword arguments (checked against signatures).
CONTEXT_PARAMS: dict[str, int] = {
    "dataset": 0, "backbone": 0, "aggregator": 1, "predictor": 1, "metric": 2, "executor": 0,
}
REGISTRY_FILE = Path(__file__).resolve().parent / "registry.yaml"  # package data: in every install
OVERRIDE_HINT = "; a preset takes a registered name only with override: true (YAML) or override=True (Python)"
PRESET_KEYS = ("plugin", "kwargs", "description", "override")


@dataclass(frozen=True)
class Source:
    """Where a registration came from: the entry point and its distribution."""

    plugin: str
    dist: str
    version: str


_UNLOADED: Any = object()


class Entry:
    """A registered name of one kind: its factory, the plugin it came from, its registration metadata.

    An entry registered from the plugin manifest knows its description and metadata but not yet its factory:
    ``factory`` imports the plugin on first access (a one-line ``PluginError`` when the plugin no longer loads).
    """

    __slots__ = ("_description", "_factory", "_load", "kind", "meta", "name", "source")

    def __init__(
        self, kind: str, name: str, factory: Callable[..., Any], source: Source, meta: dict[str, Any] | None = None,
        *, description: str | None = None, load: Callable[[Entry], Callable[..., Any]] | None = None,
    ) -> None:
        self.kind, self.name, self.source, self.meta = kind, name, source, dict(meta or {})
        self._factory, self._description, self._load = factory, description, load

    @property
    def factory(self) -> Callable[..., Any]:
        if self._factory is _UNLOADED:
            assert self._load is not None
            self._factory = self._load(self)
        return self._factory

    @property
    def loaded(self) -> bool:
        """Whether the factory is at hand (its plugin imported)."""
        return self._factory is not _UNLOADED

    @property
    def description(self) -> str:
        if self._description is None:
            doc = self.meta.get("description") or inspect.getdoc(self.factory) or ""
            self._description = doc.strip().splitlines()[0] if doc.strip() else ""
        return self._description

    def __repr__(self) -> str:
        return f"Entry({self.kind!r}, {self.name!r}, {self.source.dist} ({self.source.plugin}))"


@dataclass(frozen=True)
class Preset:
    """A registered plugin plus keyword arguments under a name of its own (e.g. a paper-scale variant)."""

    kind: str
    name: str
    plugin: str
    kwargs: dict[str, Any]
    description: str
    origin: str  # "dist (entry point)" of the plugin that registered it, or the path of its registry file
    override: bool = False  # may take a name a plugin or another preset already has


@dataclass(frozen=True)
class Failure:
    plugin: str
    dist: str
    error: str


@dataclass
class _Lazy:
    """A plugin known to the registry: its entry point, the hooks it implements, its module once imported."""

    source: Source
    ep: EntryPoint
    hooks: tuple[str, ...]
    module: ModuleType | None = None
    error: str | None = None  # why it cannot be imported (then it is not tried again)


@dataclass(frozen=True)
class Resolved:
    """A name from a grid resolved to a plugin entry and its final keyword arguments."""

    entry: Entry
    kwargs: dict[str, Any]
    preset: str | None


class Registry:
    """Factories by kind and name, presets, and the plugins that failed to load."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.presets: dict[str, dict[str, Preset]] = {k: {} for k in KINDS}
        self.failures: list[Failure] = []
        self.plugins: list[Source] = []
        self.pm: pluggy.PluginManager | None = None
        self._source: Source | None = None
        self._added: list[tuple[str, str, str]] = []
        self._lazy: dict[str, _Lazy] = {}  # entry-point name -> how to import it
        self._manifest: Manifest | None = None

    # -- registration API used by plugins -------------------------------------------------------------------
    def add(self, kind: str, name: str, factory: Callable[..., Any], **meta: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        self._put(Entry(kind, name, factory, self._source or Source("<direct>", "<direct>", "0"), meta))

    def _put(self, entry: Entry) -> None:
        kind, name, source = entry.kind, entry.name, entry.source
        claimant, preset = f"{source.dist} ({source.plugin})", self.presets[kind].get(name)
        if name in self.entries[kind]:
            other = self.entries[kind][name].source
            self._clash(kind, name, f"{other.dist} ({other.plugin})", claimant)
        if preset and not preset.override:
            self._clash(kind, name, f"the preset from {preset.origin}", claimant, OVERRIDE_HINT)
        self.entries[kind][name] = entry
        self._added.append(("entry", kind, name))

    def dataset(self, name: str, factory: Callable[..., Any], *, paths: Iterable[str] = (), **meta: Any) -> None:
        """``paths``: keyword arguments that name files or folders; ``benchkit validate`` checks they exist."""
        self.add("dataset", name, factory, paths=tuple(paths), **meta)

    def backbone(self, name: str, factory: Callable[..., Any], **meta: Any) -> None:
        self.add("backbone", name, factory, **meta)

    def aggregator(
        self, name: str, factory: Callable[..., Any], *, levels: Iterable[str] = ("frame", "patch"), **meta: Any
    ) -> None:
        self.add("aggregator", name, factory, levels=tuple(levels), **meta)

    def predictor(self, name: str, factory: Callable[..., Any], **meta: Any) -> None:
        self.add("predictor", name, factory, **meta)

    def executor(self, name: str, factory: Callable[..., Any], **meta: Any) -> None:
        """``factory(**kwargs)`` returns an ``Executor`` (``benchkit.api``): where a grid's folds run."""
        self.add("executor", name, factory, **meta)

    def metric(self, name: str, function: Callable[..., float], *, higher_is_better: bool = True, **meta: Any) -> None:
        self.add("metric", name, function, higher_is_better=higher_is_better, **meta)

    def preset(
        self, kind: str, name: str, plugin: str, description: str = "", *, override: bool = False, **kwargs: Any
    ) -> None:
        """``name`` = ``plugin`` with ``kwargs``; ``override=True`` lets it take a name that is already registered."""
        origin = f"{self._source.dist} ({self._source.plugin})" if self._source else "<direct>"
        self._add_preset(Preset(kind, name, plugin, kwargs, description, origin, override))

    def _add_preset(self, preset: Preset) -> None:
        kind, name = preset.kind, preset.name
        if kind not in KINDS:
            raise PluginError(f"preset {name!r}: unknown kind {kind!r} ({preset.origin})")
        claimant, other = f"the preset from {preset.origin}", self.presets[kind].get(name)
        if other and other.override and preset.override:
            self._clash(kind, name, f"the preset from {other.origin}", claimant, "; both override it: remove one")
        if other and not preset.override:
            self._clash(kind, name, f"the preset from {other.origin}", claimant, OVERRIDE_HINT)
        if name in self.entries[kind] and not preset.override:
            source = self.entries[kind][name].source
            self._clash(kind, name, f"{source.dist} ({source.plugin})", claimant, OVERRIDE_HINT)
        self.presets[kind][name] = preset
        self._added.append(("preset", preset.kind, preset.name))

    @staticmethod
    def _clash(kind: str, name: str, holder: str, claimant: str, hint: str = "") -> None:
        """One name, one owner. Only a preset marked ``override`` takes a registered name (it shadows the plugin, or
        replaces the preset, of that name), and only one preset may; a plugin may come after such a preset."""
        raise PluginError(f"{kind} {name!r} is registered by both {holder} and {claimant}{hint}")

    @contextmanager
    def registering(self, source: Source) -> Iterator[None]:
        """Attribute registrations to ``source``; on failure, roll back what that plugin added."""
        self._source, self._added = source, []
        try:
            yield
        except BaseException:
            for table, kind, name in self._added:
                (self.entries if table == "entry" else self.presets)[kind].pop(name, None)
            raise
        finally:
            self._source = None

    # -- lookup ---------------------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted({*self.entries[kind], *self.presets[kind]})

    def list(self, kind: str | None = None, pattern: str = "*") -> list[tuple[str, str, str]]:
        """``(kind, name, what)`` rows matching a wildcard pattern, plugins and presets alike."""
        rows = []
        for k in [kind] if kind else KINDS:
            for name in self.names(k):
                if fnmatch.fnmatchcase(name, pattern):
                    if name not in self.presets[k]:  # an overriding preset shadows the plugin of its name
                        e = self.entries[k][name]
                        rows.append((k, name, f"{e.description} [{e.source.dist}]".strip()))
                    else:
                        p = self.presets[k][name]
                        rows.append((k, name, f"preset of {p.plugin}: {p.description}".rstrip(": ")))
        return rows

    def resolve(self, kind: str, name: str, kwargs: dict[str, Any] | None = None) -> Resolved:
        """Name (plugin or preset) + grid keyword arguments → entry and merged keyword arguments, checked."""
        kwargs = dict(kwargs or {})
        preset = None
        if name in self.presets[kind]:
            p = self.presets[kind][name]
            preset, name, kwargs = p.name, p.plugin, {**p.kwargs, **kwargs}
            if name not in self.entries[kind]:
                raise PluginError(f"{kind} preset {preset!r} names unknown plugin {name!r} ({p.origin})")
        elif name not in self.entries[kind]:
            name, kwargs = self._split_argument(kind, name, kwargs)
        if name not in self.entries[kind]:
            raise PluginError(self._unknown(kind, name))
        entry = self.entries[kind][name]
        check_kwargs(entry, kwargs)
        return Resolved(entry, kwargs, preset)

    def _split_argument(self, kind: str, name: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """``prefix:argument`` (``timm:vit_small_patch16_224``, ``hf:/models/x``) → the plugin registered as
        ``prefix`` with its ``name_argument`` keyword (registration meta) set to ``argument``; else unchanged."""
        prefix, sep, argument = name.partition(":")
        entry = self.entries[kind].get(prefix) if sep and argument else None
        key = entry.meta.get("name_argument") if entry else None
        if key is None:
            return name, kwargs
        if key in kwargs:
            raise PluginError(f"{kind} {name!r}: {key!r} is given both in the name and as a keyword")
        return prefix, {**kwargs, key: argument}

    def _unknown(self, kind: str, name: str) -> str:
        msg = f"unknown {kind} {name!r}"
        close = difflib.get_close_matches(name, self.names(kind), n=3, cutoff=0.6)
        if close:
            msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
        failed = [f.plugin for f in self.failures]
        hint = f" (see `benchkit ls {kind}`"
        hint += f"; plugins that failed to load: {', '.join(failed)})" if failed else ")"
        return msg + hint

    def build(self, kind: str, resolved: Resolved, *context: Any) -> Any:
        """Call the factory; a ``ValueError`` it raises (an impossible configuration, e.g. a patch grid that
        cannot be merged 2x2) becomes a one-line ``PluginError`` naming the plugin and the input it was given."""
        try:
            return resolved.entry.factory(*context, **resolved.kwargs)
        except ValueError as e:
            given = f" for {context[0]}" if context else ""
            raise PluginError(f"{kind} {resolved.entry.name!r} cannot be built{given}: {e}") from None

    def cell_finished(self, **kwargs: Any) -> None:
        if self.pm is not None:
            for error in self.load_hook("benchkit_cell_finished"):
                log.warning(error)
            self.pm.hook.benchkit_cell_finished(**kwargs)

    # -- loading --------------------------------------------------------------------------------------------
    def load_hook(self, hook: str) -> list[str]:
        """Import the not yet imported plugins that implement ``hook`` (as recorded), so that calling it reaches
        them; returns the errors of those that fail (recorded in ``failures`` too)."""
        return [e for plugin, lazy in list(self._lazy.items()) if hook in lazy.hooks for e in self._try(plugin)]

    def load_all(self) -> None:
        """Import every plugin (``benchkit plugins``): each failure is recorded, stale records are refreshed."""
        for plugin in list(self._lazy):
            self._try(plugin)

    def plugin_order(self, plugin: str) -> int:
        """Position of a plugin in loading order (entry points first, then in-process modules)."""
        names = [s.plugin for s in self.plugins]
        return names.index(plugin) if plugin in names else len(names)

    def _try(self, plugin: str) -> list[str]:
        lazy = self._lazy[plugin]
        if lazy.module is not None or lazy.error is not None:
            return []
        try:
            self._import(plugin)
        except PluginError as e:
            return [str(e)]
        return []

    def _add_module(self, source: Source, load: Callable[[], ModuleType], ep: EntryPoint | None = None) -> None:
        """Import a plugin now and register it (guarded); an entry point is recorded in the manifest."""
        assert self.pm is not None
        try:
            module = load()
            self.pm.register(module, name=source.plugin)
        except Exception as e:
            self.failures.append(Failure(source.plugin, source.dist, f"{type(e).__name__}: {e}"))
            return
        register, added = getattr(module, "benchkit_register", None), []
        if register is not None:  # else a hook-only plugin (a logger, CLI commands): loaded, nothing to register
            try:
                with self.registering(source):
                    register(registry=self)
                added = list(self._added)
            except Exception as e:
                self.pm.unregister(module)
                self.failures.append(Failure(source.plugin, source.dist, f"{type(e).__name__}: {e}"))
                return
        self.plugins.append(source)
        if ep is None:
            return
        hooks = sorted(caller.name for caller in self.pm.get_hookcallers(module) or [])
        self._lazy[source.plugin] = _Lazy(source, ep, tuple(hooks), module=module)
        if self._manifest is not None:
            with suppress(Uncacheable):
                self._manifest.put(ep, hooks, self._record(added))

    def _record(self, added: list[tuple[str, str, str]]) -> list[list[Any]]:
        """A plugin's registrations (``_added``) as plain data, in order; ``Uncacheable`` when they are not."""
        ops: list[list[Any]] = []
        for table, kind, name in added:
            if table == "entry":
                e = self.entries[kind][name]
                ops.append(["entry", kind, name, encode(e.description), encode(e.meta)])
            else:
                p = self.presets[kind][name]
                ops.append(["preset", kind, name, encode(p.plugin), encode(p.kwargs), encode(p.description),
                            encode(p.override)])
        return ops

    def _add_recorded(self, source: Source, ep: EntryPoint, record: dict[str, Any]) -> None:
        """Register what the manifest says ``ep`` registers, without importing it; clashes fail it as at import."""
        lazy = self._lazy[source.plugin] = _Lazy(source, ep, tuple(record.get("hooks", ())))
        origin = f"{source.dist} ({source.plugin})"
        try:
            with self.registering(source):
                for op in record["ops"]:
                    if op[0] == "entry":
                        _, kind, name, description, meta = op
                        self._put(Entry(kind, name, _UNLOADED, source, decode(meta), description=description,
                                        load=self._load_factory))
                    else:
                        _, kind, name, plugin, kwargs, description, override = op
                        self._add_preset(Preset(kind, name, plugin, decode(kwargs), description, origin, override))
        except PluginError as e:  # a name another plugin has: this plugin fails, as it would when imported
            lazy.error = f"{type(e).__name__}: {e}"
            self.failures.append(Failure(source.plugin, source.dist, lazy.error))
            return
        except (KeyError, TypeError, ValueError):  # a malformed record: import the plugin instead
            del self._lazy[source.plugin]
            self._add_module(source, ep.load, ep)
            return
        self.plugins.append(source)

    def _load_factory(self, entry: Entry) -> Callable[..., Any]:
        self._import(entry.source.plugin)
        if not entry.loaded:
            raise PluginError(
                f"{entry.kind} {entry.name!r}: plugin {entry.source.plugin} ({entry.source.dist}) no longer registers"
                " it (its recorded listing was out of date and is refreshed); run the command again"
            )
        return entry.factory

    def _import(self, plugin: str) -> ModuleType:
        """Import a plugin registered from the manifest and attach its factories to its entries. A plugin that
        fails now is handled as one that failed at start-up: recorded in ``failures``, its names and presets
        removed, and a ``PluginError`` saying why."""
        lazy = self._lazy[plugin]
        if lazy.module is not None:
            return lazy.module
        if lazy.error is not None:
            raise PluginError(f"plugin {plugin} ({lazy.source.dist}) failed to load: {lazy.error}")
        source, scratch = lazy.source, Registry()
        try:
            module = lazy.ep.load()
            register = getattr(module, "benchkit_register", None)
            if register is not None:
                with scratch.registering(source):
                    register(registry=scratch)
            if self.pm is not None and not self.pm.is_registered(module):
                self.pm.register(module, name=plugin)
        except Exception as e:
            lazy.error = f"{type(e).__name__}: {e}"
            self.failures.append(Failure(plugin, source.dist, lazy.error))
            self._forget(source)
            self._stale(lazy)
            raise PluginError(f"plugin {plugin} ({source.dist}) failed to load: {lazy.error}") from None
        lazy.module = module
        mine = {(k, n): e for k, names in self.entries.items() for n, e in names.items() if e.source == source}
        for (kind, name), entry in mine.items():
            if not entry.loaded and name in scratch.entries[kind]:
                entry._factory = scratch.entries[kind][name].factory
        if set(mine) != {(k, n) for k, names in scratch.entries.items() for n in names}:
            self._stale(lazy)
        return module

    def _forget(self, source: Source) -> None:
        """Remove a plugin's names and presets (it failed to import after being registered from its record)."""
        origin = f"{source.dist} ({source.plugin})"
        for kind in KINDS:
            for name in [n for n, e in self.entries[kind].items() if e.source == source]:
                del self.entries[kind][name]
            for name in [n for n, p in self.presets[kind].items() if p.origin == origin]:
                del self.presets[kind][name]
        self.plugins = [s for s in self.plugins if s != source]

    def _stale(self, lazy: _Lazy) -> None:
        if self._manifest is not None:
            self._manifest.drop(lazy.ep)
            self._manifest.save()


def check_kwargs(entry: Entry, kwargs: dict[str, Any]) -> None:
    """Check grid keyword arguments against the factory's signature before anything runs."""
    try:
        sig = inspect.signature(entry.factory)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    params = list(sig.parameters.values())
    n_ctx = CONTEXT_PARAMS[entry.kind]
    accepted = [p.name for p in params[n_ctx:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    for key in kwargs:
        if key not in accepted and not has_var_kw:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(
                f"{entry.kind} {entry.name!r}: unexpected keyword {key!r}{hint} "
                f"(accepted: {', '.join(accepted) or 'none'})"
            )
    missing = [
        p.name
        for p in params[n_ctx:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kwargs
    ]
    if missing:
        raise PluginError(f"{entry.kind} {entry.name!r}: missing required keyword {', '.join(map(repr, missing))}")


def _load_registry_file(registry: Registry, path: Path) -> None:
    if not path.is_file():
        return
    try:  # within the limits of a grid file: BENCHKIT_REGISTRY may name any user's file
        data = _read_registry_file(registry, path) or {}
    except ConfigError as e:
        registry.failures.append(Failure(str(path), "registry.yaml", f"unreadable YAML: {e}"))
        return
    if not isinstance(data, dict):
        registry.failures.append(Failure(str(path), "registry.yaml", "not a mapping of kind -> presets"))
        return
    for kind, presets in data.items():
        if not isinstance(presets, dict | None):
            registry.failures.append(Failure(f"{path.name}:{kind}", "registry.yaml", "not a mapping of presets"))
            continue
        for name, spec in (presets or {}).items():
            try:
                registry._add_preset(_yaml_preset(kind, name, spec, path))
            except PluginError as e:
                registry.failures.append(Failure(f"{path.name}:{kind}.{name}", "registry.yaml", str(e)))


def _read_registry_file(registry: Registry, path: Path) -> Any:
    """The parsed file, kept in the manifest while the file is unchanged (parsing within limits is not free)."""

    def parse(path: Path) -> Any:
        return yaml_safe.load_file(path, "registry file")

    return registry._manifest.registry_file(path, parse) if registry._manifest else parse(path)


def _yaml_preset(kind: str, name: str, spec: Any, path: Path) -> Preset:
    """``{plugin, kwargs, description, override}`` from a registry file, checked."""
    spec = spec if isinstance(spec, dict) else {}
    kwargs, override = spec.get("kwargs") or {}, spec.get("override", False)
    malformed = set(spec) - set(PRESET_KEYS) or "plugin" not in spec or not isinstance(kwargs, dict)
    if malformed or not isinstance(override, bool):
        raise PluginError(
            f"{kind} preset {name!r}: needs plugin, may have kwargs (a mapping), description, override (true or"
            f" false); got {', '.join(map(str, spec)) or 'nothing'}"
        )
    return Preset(kind, name, spec["plugin"], dict(kwargs), spec.get("description", ""), str(path), override)


def load_plugins(extra: Iterable[ModuleType] = (), registry_files: Iterable[Path] | None = None) -> Registry:
    """Discover and register every plugin; never raises for a broken plugin (it is recorded instead).

    An entry point with a current record in the plugin manifest is registered from it and imported later, when
    first needed; the others, and the ``extra`` modules, are imported and registered now."""
    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry.pm = pm
    manifest = registry._manifest = Manifest.open()
    disabled = os.environ.get("BENCHKIT_DISABLE_PLUGIN_AUTOLOAD", "").strip() not in ("", "0")
    allowed = {p.strip() for p in os.environ.get("BENCHKIT_PLUGINS", "").split(",") if p.strip()}

    for ep in manifest.entry_points():
        if disabled and ep.name not in allowed:
            continue
        source = Source(ep.name, ep.dist, ep.version)
        record = manifest.record(ep)
        if record is not None:
            registry._add_recorded(source, ep, record)
        else:
            registry._add_module(source, ep.load, ep)
    for module in extra:
        registry._add_module(Source(module.__name__, "<in-process>", "0"), functools.partial(lambda m: m, module))

    files = [REGISTRY_FILE] if registry_files is None else list(registry_files)
    for extra_file in os.environ.get("BENCHKIT_REGISTRY", "").split(os.pathsep):
        if extra_file:
            files.append(Path(extra_file))
    for path in files:
        _load_registry_file(registry, path)
    manifest.save()
    return registry


@functools.cache
def get_registry() -> Registry:
    """The process-wide registry (loaded once)."""
    return load_plugins()
