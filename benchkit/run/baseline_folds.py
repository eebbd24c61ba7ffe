"""The grid's baselines (random, random-paper, majority; ``benchkit.sequence.baselines``) on every fold of every
dataset, stored beside the cells like any fold."""

from __future__ import annotations

from benchkit.grid.config import Grid
from benchkit.run.folds import Datasets, fold_seed
from benchkit.run.provenance import first_cell_per_dataset
from benchkit.run.scoring import score
from benchkit.sequence.baselines import BASELINES, baseline_predictions
from benchkit.storage.store import RunStore


def run_baselines(store: RunStore, grid: Grid, cells, datasets: Datasets, metrics) -> None:
    for key, pc in first_cell_per_dataset(cells).items():
        for name in grid.baselines:
            folder = store.baseline_dir(name, key)
            for k in range(grid.protocol.splits):
                record = store.load_fold(folder, k, predictions=True)
                if record is not None and set(metrics) <= set(record["metrics"]):
                    continue
                bundle = datasets.get(key, pc.dataset)
                train_idx, test_idx = bundle.splits[k]
                test_refs = [bundle.refs[i] for i in test_idx]
                vocabulary = bundle.dataset.vocabulary
                kind, offset = BASELINES[name]
                preds = baseline_predictions(
                    kind, [bundle.refs[i] for i in train_idx], len(test_idx), len(vocabulary.actions),
                    seed=fold_seed(grid, k), length_offset=offset,
                )
                store.save_fold(
                    folder, k,
                    {"baseline": name, "fold": k, "metrics": score(metrics, preds, test_refs, vocabulary),
                     "n_train": len(train_idx), "n_test": len(test_idx)},
                    {"indices": test_idx.tolist(), "predictions": preds, "references": test_refs},
                )
