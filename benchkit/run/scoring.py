"""Scoring: every metric on one fold's predictions, and rescoring stored folds when a grid gains a metric."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchkit.errors import DataError
from benchkit.registry.plugins import Resolved
from benchkit.sequence.vocabulary import Vocabulary
from benchkit.storage.store import RunStore

if TYPE_CHECKING:  # folds imports score
    from benchkit.run.folds import Datasets


def score(
    metrics: dict[str, Resolved], predictions: list, references: list, vocabulary: Vocabulary | None,
    candidates: list | None = None,
) -> dict[str, float]:
    """Every metric on one fold. Metrics registered with ``tokens="names"`` (BLEU, METEOR: the reference scores
    action names, spec invpatch.md §5) receive names; the others action indices. Metrics registered with
    ``candidates=True`` (ED@Z) receive the K candidate sequences of each sample when the grid decodes them."""
    out = {}
    for name, r in metrics.items():
        preds, refs = predictions, references
        if r.entry.meta.get("candidates") and candidates is not None:
            preds = candidates
        if r.entry.meta.get("tokens") == "names":
            if vocabulary is None:
                raise DataError(f"metric {name!r} needs the dataset's action names")
            preds = [[vocabulary.class_name(a) for a in p] for p in preds]
            refs = [[vocabulary.class_name(a) for a in p] for p in references]
        out[name] = float(r.entry.factory(preds, refs, **r.kwargs))
    return out


def rescore(store: RunStore, cells, metrics, stored, n_splits, datasets: Datasets) -> None:
    """Stored folds that lack a metric now in the grid are scored from their stored predictions (no retraining)."""
    for pc in cells:
        for k in range(n_splits):
            record = stored[(pc.id, k)]
            if record is None or set(metrics) <= set(record["metrics"]):
                continue
            preds = store.load_predictions(store.cell_dir(pc.id), k)
            vocabulary = datasets.get(pc.dataset_key, pc.dataset).dataset.vocabulary
            record["metrics"].update(
                score(metrics, preds["predictions"], preds["references"], vocabulary, preds.get("candidates"))
            )
            store.save_fold(store.cell_dir(pc.id), k, record, None)
