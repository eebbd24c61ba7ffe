"""``train.standardize``: per-dimension z-scoring of the features with the training fold's statistics."""

from __future__ import annotations

import numpy as np
import torch

from benchkit.grid.config import parse_grid
from benchkit.grid.plan import plan
from benchkit.learn.training import Batches, CellModel, Standardize
from benchkit.run.runner import run_grid


def test_statistics_come_from_the_training_rows_only():
    rng = np.random.default_rng(0)
    features = (rng.normal(size=(10, 3, 4, 5)) * np.arange(1, 6) + 7).astype(np.float16)
    features[8:] = 1000  # test rows: must not move the statistics
    train = np.array([0, 2, 3, 5, 7])
    norm = Standardize.fit(Batches(features, np.zeros((10, 2), dtype=np.int64), train), batch_size=2)
    rows = features[train].astype(np.float64).reshape(-1, 5)
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0), rtol=1e-6)
    np.testing.assert_allclose(1 / norm.scale.numpy(), rows.std(0) + 1e-6, rtol=1e-5)
    out = norm(torch.from_numpy(features[train].astype(np.float32))).double().reshape(-1, 5)
    np.testing.assert_allclose(out.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0, unbiased=False).numpy(), 1, atol=1e-4)


def test_cell_model_standardizes_before_the_aggregator():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(x)
            return x

    norm = Standardize(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]), eps=0.0)
    model = CellModel(Spy(), torch.nn.Identity(), norm)
    model.prefix(torch.tensor([[3.0, 6.0]]))
    assert torch.allclose(seen[0], torch.tensor([[1.0, 1.0]]))
    assert "standardize.mean" in model.state_dict()  # travels with the model
    assert isinstance(CellModel(Spy(), torch.nn.Identity()).standardize, torch.nn.Identity)


def test_standardize_enters_the_cell_id_only_when_set(tiny_grid, registry):
    base = {pc.id for pc in plan(parse_grid(tiny_grid), registry)}
    tiny_grid["train"]["standardize"] = False
    assert {pc.id for pc in plan(parse_grid(tiny_grid), registry)} == base  # stored runs stay valid
    tiny_grid["train"]["standardize"] = True
    assert {pc.id for pc in plan(parse_grid(tiny_grid), registry)}.isdisjoint(base)


def test_a_standardized_grid_runs(tmp_path, tiny_grid, registry):
    tiny_grid["train"]["standardize"] = True
    summary = run_grid(parse_grid(tiny_grid), tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert summary.folds_run == summary.folds_total > 0 and not summary.failed
