"""The quickstart grid as the benchmarks run it: ``benchmarks/quickstart.yaml`` with ``--perf-grid-set`` overrides,
run through ``benchkit.run.runner.run_grid`` as ``benchkit run`` does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchkit.grid.config import apply_overrides, load_raw, parse_grid
from benchkit.registry.plugins import Registry
from benchkit.run.runner import RunSummary, build_executor, run_grid

QUICKSTART = Path(__file__).resolve().parents[1] / "quickstart.yaml"


def quickstart(overrides: list[str]) -> tuple[dict[str, Any], Any]:
    """``(raw, grid)``: the quickstart grid with ``overrides`` (``KEY=VALUE``, as on the command line)."""
    raw = apply_overrides(load_raw(QUICKSTART), overrides)
    return raw, parse_grid(raw, str(QUICKSTART))


def run(raw: dict[str, Any], grid: Any, run_dir: Path, registry: Registry, executor: str = "local") -> RunSummary:
    return run_grid(grid, run_dir, registry, raw_grid=raw, say=lambda _: None, progress=False,
                    executor=build_executor(registry, grid, executor))


def fold_metrics(summary: RunSummary) -> dict[tuple[str, str], Any]:
    """``(cell, fold file) → metrics`` of every stored fold of a run."""
    return {(p.parent.name, p.name): json.loads(p.read_text())["metrics"]
            for p in sorted((summary.run_dir / "cells").glob("*/fold-*.json"))
            if not p.name.endswith((".predictions.json", ".error.json"))}
