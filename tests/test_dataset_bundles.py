"""A grid run builds each dataset configuration once: its samples, targets and splits are shared by every cell and
fold (``benchkit.run.folds.Datasets``)."""

from __future__ import annotations

from benchkit.grid.config import parse_grid
from benchkit.run.runner import run_grid


def test_grid_run_builds_each_dataset_once(tiny_grid, registry, tmp_path, monkeypatch):
    builds: list[dict] = []
    build = registry.build

    def counting(kind, resolved, *context):
        if kind == "dataset":
            builds.append(dict(resolved.kwargs))
        return build(kind, resolved, *context)

    monkeypatch.setattr(registry, "build", counting)
    tiny_grid["train"]["epochs"] = 1
    tiny_grid["sweep"] = {"frames": [5, 6]}  # two dataset configurations
    tiny_grid["baselines"] = ["majority"]
    summary = run_grid(parse_grid(tiny_grid), tmp_path / "run", registry, say=lambda m: None, progress=False)
    assert (summary.cells, summary.folds_run) == (4, 8)  # 2 frames x 2 levels, 2 folds each
    assert sorted(b["frames"] for b in builds) == [5, 6]
