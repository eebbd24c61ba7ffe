"""Everything a plugin imports, in one module: ``from benchkit.api import hookimpl, FeatureSpec, ...``.

This is benchkit's public surface for plugin authors (docs/plugins.md). First-party plugins import nothing else
from benchkit (``tests/test_api.py`` checks it), so the core behind it may be reorganised without breaking them.
Importing it is cheap: no torch, numpy or pydantic; the names marked *lazy* import their module on first use.

- hooks: ``hookimpl`` (decorate ``benchkit_register``, ``benchkit_cell_finished``, ``benchkit_commands``)
- interfaces (``typing.Protocol``): ``Dataset``, ``Backbone``, ``Aggregator``, ``Predictor``, ``Metric``,
  ``Executor``; optional capabilities ``LogitsPredictor``, ``CandidatesPredictor``, ``ReferencePredictor``,
  ``StepSequences``, ``HasComponents``; what factories receive and return: ``FeatureSpec``, ``PredictorSpec``,
  ``Features``, ``LEVELS``
- vocabularies: ``Vocabulary``, ``PAD``, ``BOS``, ``PAD_CLASS``, ``special_class``
- errors (one line, exit code 2 on the command line): ``BenchkitError``, ``ConfigError``, ``PluginError``,
  ``DataError``, ``StoreError``
- helpers: ``pad_pair``, ``select_part``, ``PARTS`` (sequences); ``resolve_device`` (the one device resolver);
  ``resolve_within`` (paths read from data files stay inside the dataset root); ``default_cache_dir``;
  ``stable_hash`` (lazy)
- verified cache files (lazy; ``benchkit.storage.integrity``, docs/reliability.md): ``write_file`` (atomic, with a
  checksum beside it), ``check_file``, ``checksum_path``, ``quarantine`` (move a damaged file aside, one warning),
  ``sweep_once`` (remove temporaries of dead writers), ``file_sha256``
- the host, for plugins that compose others and for tests: ``Registry``, ``get_registry``, ``load_plugins`` (lazy),
  ``cli`` (lazy: the ``benchkit`` click group, for ``click.testing.CliRunner``)
- results, for trackers: ``leaderboard(run_dir, fmt)`` (the stored results' leaderboard as text),
  ``read_record(path)`` (a run directory's JSON record, verified), ``flatten(mapping)`` (``{"a.b": leaf}``)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit.errors import BenchkitError, ConfigError, DataError, PluginError, StoreError
from benchkit.learn.devices import resolve_device
from benchkit.paths import default_cache_dir, resolve_within
from benchkit.registry.hookspecs import hookimpl
from benchkit.registry.interfaces import (
    LEVELS,
    Aggregator,
    Backbone,
    CandidatesPredictor,
    Dataset,
    Executor,
    Features,
    FeatureSpec,
    GreedyTokensPredictor,
    HasComponents,
    Level,
    LogitsPredictor,
    Metric,
    Predictor,
    PredictorSpec,
    ReferencePredictor,
    StepSequences,
)
from benchkit.sequence.padding import PARTS, pad_pair, select_part
from benchkit.sequence.vocabulary import BOS, PAD, PAD_CLASS, Vocabulary, special_class, until_eos

if TYPE_CHECKING:
    from benchkit.cli import main as cli
    from benchkit.grid.config import stable_hash
    from benchkit.registry.plugins import Registry, get_registry, load_plugins
    from benchkit.report.results import flatten
    from benchkit.storage.integrity import check_file, checksum_path, file_sha256, quarantine, sweep_once, write_file

# name → module holding it, imported on first access (these modules import pydantic, torch or the plugin manager)
_LAZY = {
    "stable_hash": ("benchkit.grid.config", "stable_hash"),
    **{name: ("benchkit.storage.integrity", name)
       for name in ("file_sha256", "write_file", "check_file", "checksum_path", "quarantine", "sweep_once")},
    "Registry": ("benchkit.registry.plugins", "Registry"),
    "get_registry": ("benchkit.registry.plugins", "get_registry"),
    "load_plugins": ("benchkit.registry.plugins", "load_plugins"),
    "cli": ("benchkit.cli", "main"),
    "flatten": ("benchkit.report.results", "flatten"),
}

__all__ = [
    "BOS", "LEVELS", "PAD", "PAD_CLASS", "PARTS", "Aggregator", "Backbone", "BenchkitError", "CandidatesPredictor",
    "ConfigError", "DataError", "Dataset", "Executor", "FeatureSpec", "Features", "GreedyTokensPredictor",
    "HasComponents", "Level", "LogitsPredictor", "Metric", "PluginError", "Predictor", "PredictorSpec",
    "ReferencePredictor", "Registry", "StepSequences", "StoreError", "Vocabulary", "check_file", "checksum_path",
    "cli", "default_cache_dir", "file_sha256", "flatten", "get_registry", "hookimpl", "leaderboard", "load_plugins",
    "pad_pair", "quarantine", "read_record", "resolve_device", "resolve_within", "select_part", "special_class",
    "stable_hash", "sweep_once", "until_eos", "write_file",
]


def leaderboard(run_dir: str | Path, fmt: str = "md") -> str:
    """The leaderboard of a run directory's stored results as text (``md``, ``csv``, ``latex``, ``html``), grouped
    as ``benchkit run`` writes it: for trackers that log it next to their own records."""
    from benchkit.report.leaderboard import collect, render
    from benchkit.storage.store import RunStore

    return render(collect(RunStore(run_dir)), fmt)


def read_record(path: str | Path) -> dict[str, Any]:
    """A JSON record of a run directory (``plan.json``, ``environment.json``, a fold record), its checksum verified
    and removed; ``{}`` when it is absent or damaged (the run that owns it moves damage aside and says so)."""
    from benchkit.storage.integrity import read_verified

    try:
        record = read_verified(Path(path))
    except (OSError, StoreError):  # StoreError: missing or damaged (DamagedFile)
        return {}
    return record if isinstance(record, dict) else {}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # the next access is a plain lookup
        return value
    raise AttributeError(f"module 'benchkit.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
