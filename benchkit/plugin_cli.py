"""Commands that plugins add to the ``benchkit`` CLI through ``benchkit_commands()`` hooks.

Collected once per registry, each plugin's hook inside a guard: a hook that raises or returns something other than
click commands, and a command whose name a built-in or an earlier plugin already has, are recorded in
``registry.failures`` (``benchkit plugins`` lists them, naming both packages); everything else still works.
"""

from __future__ import annotations

import functools
from importlib import metadata

import click

from benchkit.registry.hookspecs import PROJECT
from benchkit.registry.plugins import Failure, Registry


def _dist(registry: Registry, plugin: str) -> str:
    """The distribution of a plugin (an entry-point name), also for plugins that only implement other hooks."""
    for source in registry.plugins:
        if source.plugin == plugin:
            return source.dist
    return next((ep.dist.name for ep in metadata.entry_points(group=PROJECT, name=plugin) if ep.dist), "<in-process>")


@functools.cache
def plugin_commands(registry: Registry, builtin: frozenset[str]) -> dict[str, tuple[str, click.Command]]:
    """Command name → (plugin, command) for every plugin command that loads and whose name is free."""
    found: dict[str, tuple[str, click.Command]] = {}
    owners = dict.fromkeys(builtin, "benchkit (built-in)")
    if registry.pm is None:
        return found
    registry.load_hook("benchkit_commands")  # plugins known from the manifest are imported only now
    impls = registry.pm.hook.benchkit_commands.get_hookimpls()
    for impl in sorted(impls, key=lambda i: registry.plugin_order(registry.pm.get_name(i.plugin) or "?")):
        plugin = registry.pm.get_name(impl.plugin) or "?"
        dist = _dist(registry, plugin)
        try:
            commands = list(impl.function() or ())
            for command in commands:
                if not isinstance(command, click.Command):
                    raise TypeError(f"benchkit_commands returned {command!r}, not a click command")
        except Exception as e:
            registry.failures.append(Failure(plugin, dist, f"{type(e).__name__}: {e}"))
            continue
        for command in commands:
            name = command.name or "?"
            if name in owners:
                error = f"command {name!r} is provided by both {owners[name]} and {dist} ({plugin})"
                registry.failures.append(Failure(plugin, dist, error))
                continue
            owners[name], found[name] = f"{dist} ({plugin})", (plugin, command)
    return found
