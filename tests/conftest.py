"""Shared fixtures: tiny grids on the synthetic dataset, an isolated cache, offline Hugging Face."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

TINY_GRID = {
    "name": "tiny",
    "dataset": {"name": "synthetic", "videos": 8, "windows_per_video": 2, "frames": 6, "size": 16, "sprite": 3},
    "backbone": {"name": "random-vit", "image_size": 16, "patch": 4, "dim": 16, "depth": 1, "heads": 2},
    "level": ["frame", "patch"],
    "aggregator": ["mean"],
    "predictor": {"name": "prefix-gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64},
    "metrics": ["accuracy"],
    "protocol": {"folds": 2, "seed": 0},
    "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3},
}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def tiny_grid() -> dict:
    return yaml.safe_load(yaml.safe_dump(TINY_GRID))


@pytest.fixture
def write_grid(tmp_path):
    def write(grid: dict | str, name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(grid if isinstance(grid, str) else yaml.safe_dump(grid))
        return path

    return write


@pytest.fixture(scope="session")
def registry():
    from benchkit.registry.plugins import get_registry

    return get_registry()
