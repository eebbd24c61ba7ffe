"""Tests of $dist, run after installing it: python -m pytest"""

from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from benchkit.api import Dataset, FeatureSpec, cli, load_plugins

GRID = Path(__file__).resolve().parent.parent / "grid.yaml"


def test_registered_through_entry_points():
    registry = load_plugins()
    for kind, name in [("aggregator", "$short-maxmean"), ("dataset", "$short-flicker")]:
        assert registry.entries[kind][name].source.dist == "$dist"


def test_aggregator_output_shape():
    registry = load_plugins()
    resolved = registry.resolve("aggregator", "$short-maxmean", {"scale": 0.5})
    aggregator = registry.build("aggregator", resolved, FeatureSpec(level="patch", dim=8, frames=4, grid=(2, 2)))
    assert aggregator(torch.randn(3, 4, 4, 8)).shape == (3, aggregator.num_tokens, aggregator.out_dim)


def test_dataset_meets_the_interface():
    registry = load_plugins()
    dataset = registry.build("dataset", registry.resolve("dataset", "$short-flicker", {"clips": 6}))
    assert isinstance(dataset, Dataset) and len(dataset) == len(dataset.groups()) == 6
    assert dataset.video(0).shape == (4, 16, 16, 3) and dataset.video(0).dtype == np.uint8


def test_grid_runs_next_to_built_in_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["run", str(GRID), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "| $short-maxmean |" in result.stdout
