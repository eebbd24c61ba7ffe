"""pluggy hook specifications of the ``benchkit`` entry-point group.

A plugin module exposes ``benchkit_register(registry)`` (decorated with :data:`hookimpl`) and is listed under
``[project.entry-points.benchkit]`` in its distribution's ``pyproject.toml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from benchkit.plugins import Registry

PROJECT = "benchkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def benchkit_register(registry: Registry) -> None:
    """Add factories, e.g. ``registry.aggregator("gem", GeM, levels=("frame", "patch"))``."""


@hookspec
def benchkit_cell_finished(cell: dict[str, Any], summary: dict[str, Any], run_dir: str) -> None:
    """Called once a cell has all its folds stored (e.g. to log it to an experiment tracker)."""
