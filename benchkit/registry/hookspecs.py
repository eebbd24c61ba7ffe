"""pluggy hook specifications of the ``benchkit`` entry-point group.

A plugin module implements any of these hooks (each decorated with :data:`hookimpl`, named exactly as here, taking
any subset of the arguments) and is listed under ``[project.entry-points.benchkit]`` in its distribution's
``pyproject.toml``. ``docs/plugins.md`` is the guide.

- ``benchkit_register(registry)``: add datasets, backbones, aggregators, predictors, metrics and presets.
- ``benchkit_cell_finished(cell, summary, run_dir)``: a cell's folds are done (log it to a tracker).
- ``benchkit_commands()``: click commands to add to the ``benchkit`` CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Iterable

    import click

    from benchkit.registry.plugins import Registry

PROJECT = "benchkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def benchkit_register(registry: Registry) -> None:
    """Add factories and presets, e.g. ``registry.aggregator("gem", GeM, levels=("frame", "patch"))``.

    Called once per plugin when plugins load, inside a guard: if it raises, what it added is rolled back and the
    plugin is listed as failed by ``benchkit plugins``. A name another plugin already has is such a failure.
    """


@hookspec
def benchkit_cell_finished(cell: dict[str, Any], summary: dict[str, Any], run_dir: str) -> None:
    """Called in the process that runs the grid once every fold of a cell that this run had to do is done (e.g. to
    log the cell to an experiment tracker); not called for cells whose folds an earlier run stored.

    ``cell``: ``id`` and the resolved configuration (``cells/<id>/cell.json`` less the labels); ``summary``:
    ``labels``, ``metrics`` (``{name: {mean, half_width, n}}`` over the stored folds) and ``folds`` (how many are
    stored: fewer than the protocol's when some failed); ``run_dir``: the run directory. An exception raised here
    stops the run (stored folds are kept).
    """


@hookspec
def benchkit_commands() -> Iterable[click.Command]:
    """Return click commands (or groups) to add to the ``benchkit`` CLI, e.g. ``[sync]`` for ``benchkit sync``.

    Called when the CLI needs a command it does not have (or lists them for ``--help``). A command whose name a
    built-in or another plugin already has is left out and recorded as a failure of this plugin, naming both.
    """
