"""Every grid under benchmarks/ parses; the CPU ones validate against the registry; the paper-scale ones fail
only for plugins that are not registered yet (named in their header comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchkit.config import load_grid
from benchkit.errors import PluginError
from benchkit.plan import plan

GRIDS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.yaml"))
PAPER_SCALE = {"invpatch_table1_mugen.yaml", "invpatch_table2_bimacs.yaml"}


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_benchmark_grid(path, registry, monkeypatch, tmp_path):
    monkeypatch.setenv("MUGEN_ROOT", str(tmp_path))
    monkeypatch.setenv("BIMACS_ROOT", str(tmp_path))
    grid = load_grid(path)
    if path.name in PAPER_SCALE:
        with pytest.raises(PluginError, match=r"unknown (dataset|backbone) '(mugen|bimacs|dinov2|videomae)"):
            plan(grid, registry)
    else:
        assert plan(grid, registry)
