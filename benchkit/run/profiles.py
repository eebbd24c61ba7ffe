"""The grid's ``profile:`` section: each cell profiled once, ``profile.json`` beside its folds."""

from __future__ import annotations

from collections.abc import Callable

from benchkit.grid.config import Grid
from benchkit.registry.interfaces import FeatureSpec
from benchkit.registry.plugins import Registry
from benchkit.run.folds import FoldRunner
from benchkit.run.summaries import short_label
from benchkit.storage.store import RunStore, atomic_write_json


def profile_cells(
    store: RunStore, grid: Grid, cells, runner: FoldRunner, registry: Registry, say: Callable[[str], None]
) -> None:
    """Each cell profiled once (``profile.json`` beside its folds; redone only when the options change)."""
    from benchkit.profiling import ProfileOptions, profile_cell

    options = ProfileOptions.of(grid.profile)
    wanted = options.model_dump()
    for pc in cells:
        path = store.cell_dir(pc.id) / "profile.json"
        stored = store.verify(path, "profiling the cell again")  # None when absent or damaged (moved aside)
        if isinstance(stored, dict) and stored.get("options") == wanted:
            continue
        bundle = runner.datasets.get(pc.dataset_key, pc.dataset)
        cached = runner.features(pc, bundle.dataset)
        feats = cached.level(pc.cell.level)
        spec = FeatureSpec(level=pc.cell.level, dim=feats.shape[-1], frames=feats.shape[1], grid=cached.grid)
        video = bundle.dataset.video(0)
        shape = tuple(video.shape[:3]) if getattr(bundle.dataset, "kind", "video") == "video" else None
        say(f"profiling {short_label(pc)}")
        result = profile_cell(registry, pc, spec, bundle.dataset.vocabulary, bundle.tokens.shape[1], options,
                              video_shape=shape)
        atomic_write_json(path, {**result, "options": wanted})
