"""Every grid under benchmarks/ parses and validates against the registry (paper-scale ones with their data roots
pointed at an empty folder: validation checks names, keyword arguments, levels and that the paths exist)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchkit.config import load_grid
from benchkit.plan import plan

GRIDS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.yaml"))
ROOTS = ("MUGEN_ROOT", "BIMACS_ROOT", "COIN_ROOT", "CROSSTASK_ROOT", "NIV_ROOT", "EGO4D_ROOT")


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_benchmark_grid(path, registry, monkeypatch, tmp_path):
    for name in ROOTS:
        monkeypatch.setenv(name, str(tmp_path))
    assert plan(load_grid(path), registry)
