"""User-facing errors.

Anything a user can cause (a malformed grid, an unknown plugin name, a missing path, a corrupt stored file)
raises :class:`BenchkitError`. The CLI renders it as one line and exits with code 2; everything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class BenchkitError(Exception):
    """An error caused by user input; rendered by the CLI as ``error: <message>`` with exit code 2."""

    exit_code = 2


class ConfigError(BenchkitError):
    """The grid YAML (or a command-line override) is invalid."""


class PluginError(BenchkitError):
    """An unknown plugin or preset name, a bad keyword argument, or an unsupported combination."""


class DataError(BenchkitError):
    """A missing data path or a dataset that cannot be read."""


class StoreError(BenchkitError):
    """A run directory that is locked, corrupt or missing."""
