"""One fold of one cell, as a unit of work any executor can run: the worker side of the runner.

A :class:`FoldTask` names a cell (by id) and a split. :class:`FoldRunner` holds what a worker needs to run it (the
registry, the planned cells, datasets with their splits and encoded targets, memory-mapped features) and turns a
task into a :class:`FoldResult`: the fold's record and predictions, or its error with the traceback. The driver
(``runner.py``) alone writes the store, so workers may be other processes or other machines
(:class:`RemoteFolds` rebuilds a runner from the grid in the worker, once per process).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchkit import errors
from benchkit.errors import BenchkitError, DataError
from benchkit.grid.config import Grid, parse_grid, stable_hash
from benchkit.grid.plan import PlannedCell, plan, resolve_metrics
from benchkit.learn.decoding import candidate_tokens, viterbi_decoder, viterbi_tokens
from benchkit.learn.devices import resolve_device
from benchkit.learn.together import decode_together
from benchkit.learn.training import Batches, CellModel, Standardize, fit, predict, seed_everything
from benchkit.registry.interfaces import Dataset, FeatureSpec, PredictorSpec
from benchkit.registry.plugins import Registry, Resolved
from benchkit.run.scoring import score
from benchkit.run.selection import select
from benchkit.run.splits import make_splits, subsample_train
from benchkit.sequence.vocabulary import until_eos
from benchkit.storage.features import CachedFeatures, FeatureCache

log = logging.getLogger("benchkit")


@dataclass(frozen=True)
class FoldTask:
    cell_id: str
    fold: int


@dataclass
class FoldResult:
    cell_id: str
    fold: int
    record: dict[str, Any] | None = None
    predictions: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # a failure of the fold: type, message, traceback, attempts, host
    user_error: tuple[str, str] | None = None  # a BenchkitError (bad input): class name, message
    messages: list[str] = field(default_factory=list)  # warnings logged by the worker, replayed by the driver

    @property
    def ok(self) -> bool:
        return self.record is not None


def fold_seed(grid: Grid, fold: int) -> int:
    """Fold ``k`` of every cell trains with seed ``grid.seed * 1000 + k`` (docs/decisions.md)."""
    return grid.seed * 1000 + fold


@dataclass
class DatasetBundle:
    dataset: Dataset
    splits: list[tuple[np.ndarray, np.ndarray]]
    tokens: np.ndarray  # (N, L) encoded targets: BOS, actions, EOS, PAD
    refs: list[list[int]]


class Datasets:
    """Datasets with their splits and encoded targets, built once per dataset configuration and shared by cells."""

    def __init__(self, registry: Registry, grid: Grid) -> None:
        self.registry, self.grid = registry, grid
        self._bundles: dict[str, DatasetBundle] = {}

    def get(self, key: str, resolved: Resolved) -> DatasetBundle:
        """The bundle of the dataset configuration ``key`` (``PlannedCell.dataset_key``), built on first use."""
        if key not in self._bundles:
            dataset = self.registry.build("dataset", resolved)
            n = len(dataset)
            if n == 0:
                raise DataError(f"dataset {resolved.entry.name!r} has no samples")
            refs = [list(dataset.targets(i)) for i in range(n)]
            max_len = max(len(r) for r in refs) + 2
            tokens = np.array([dataset.vocabulary.encode(r, max_len) for r in refs], dtype=np.int64)
            protocol = self.grid.protocol
            group_key = protocol.group_key or ("split" if protocol.kind == "fixed_split" else None)
            splits = make_splits(dataset.groups(group_key), protocol)
            self._bundles[key] = DatasetBundle(dataset, splits, tokens, refs)
        return self._bundles[key]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class FoldRunner:
    """Runs folds of one grid: a callable ``FoldTask -> FoldResult`` that never raises for a failing fold."""

    def __init__(
        self, grid: Grid, registry: Registry, *, only: list[dict[str, str]] | None = None, progress: bool = False,
        cells: list[PlannedCell] | None = None, datasets: Datasets | None = None,
    ) -> None:
        self.grid, self.registry, self.progress = grid, registry, progress
        self.cells = {pc.id: pc for pc in (cells if cells is not None else plan(grid, registry, only))}
        self.metrics = resolve_metrics(registry, grid)
        self.device = resolve_device(grid.train.device, "train.device")
        self.datasets = datasets or Datasets(registry, grid)
        self.cache = FeatureCache(grid.cache_dir)
        self._features: dict[tuple[str, str], CachedFeatures] = {}

    def features(self, pc: PlannedCell, dataset: Dataset) -> CachedFeatures:
        key = (pc.dataset_key, stable_hash(pc.config["backbone"]))
        if key not in self._features:
            backbone = self.registry.build("backbone", pc.backbone)
            label = f"features {pc.cell.backbone.display} on {pc.cell.dataset.display}"
            bar = tqdm(total=len(dataset), unit="video", desc=label, disable=not self.progress, leave=False,
                       file=sys.stderr)
            try:
                self._features[key] = self.cache.get_or_compute(
                    dataset, backbone, pc.config["backbone"], progress=lambda done, total: bar.update(done - bar.n)
                )
            finally:
                bar.close()
        return self._features[key]

    def __call__(self, task: FoldTask) -> FoldResult:
        handler = _Collect()
        log.addHandler(handler)
        try:
            result = self._attempts(task)
        finally:
            log.removeHandler(handler)
        result.messages = handler.messages
        return result

    def _attempts(self, task: FoldTask) -> FoldResult:
        attempts = self.grid.retries + 1
        for attempt in range(1, attempts + 1):
            start = time.perf_counter()
            try:
                record, predictions = self.run(task)
                record["attempts"] = attempt
                return FoldResult(task.cell_id, task.fold, record=record, predictions=predictions)
            except BenchkitError as e:  # bad input: the whole run stops with this one line
                return FoldResult(task.cell_id, task.fold, user_error=(type(e).__name__, str(e)))
            except Exception as e:
                error = {
                    "type": type(e).__name__,
                    "message": str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__,
                    "traceback": traceback.format_exc(),
                    "attempts": attempt,
                    "seconds": time.perf_counter() - start,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                }
                if isinstance(e, torch.OutOfMemoryError) and torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if attempt < attempts:
                    log.warning(f"cell {task.cell_id} fold {task.fold}: {error['type']}: {error['message']}; "
                                f"retrying ({attempt}/{attempts - 1})")
        return FoldResult(task.cell_id, task.fold, error=error)

    def run(self, task: FoldTask) -> tuple[dict[str, Any], dict[str, Any]]:
        """Train (selecting among the cell's candidates on validation data, if it has any) and test one fold;
        raises on failure."""
        pc = self.cells[task.cell_id]
        bundle = self.datasets.get(pc.dataset_key, pc.dataset)
        cached = self.features(pc, bundle.dataset)
        feats = cached.level(pc.cell.level)
        train_idx, test_idx = (np.sort(s) for s in bundle.splits[task.fold])
        train_idx = subsample_train(train_idx, pc.cell.train_fraction, task.fold, self.grid.protocol, len(bundle.refs))
        seed = fold_seed(self.grid, task.fold)
        spec = FeatureSpec(level=pc.cell.level, dim=feats.shape[-1], frames=feats.shape[1], grid=cached.grid)

        def build(aggregator_part: Resolved, predictor_part: Resolved, standardize: Standardize | None) -> CellModel:
            aggregator = self.registry.build("aggregator", aggregator_part, spec)
            pspec = PredictorSpec(
                prefix_dim=aggregator.out_dim, prefix_tokens=aggregator.num_tokens,
                vocabulary=bundle.dataset.vocabulary, max_len=bundle.tokens.shape[1],
            )
            return CellModel(aggregator, self.registry.build("predictor", predictor_part, pspec), standardize)

        selection = None
        if pc.variants:
            chosen = select(
                self.grid, pc, dataset=bundle.dataset, feats=feats, tokens=bundle.tokens, train_idx=train_idx,
                split=task.fold, seed=seed, device=self.device, metrics=self.metrics,
                build=lambda v, standardize: build(v.aggregator, v.predictor, standardize),
                validate=lambda model, idx, known: self.score(model, bundle, feats, idx, known)[0],
                validate_together=lambda models, scope, idx, known: self.score_together(models, scope, bundle, feats,
                                                                                        idx, known),
            )
            model, history, trainable, selection = chosen.model, chosen.history, chosen.trainable, chosen.record
            train_idx = chosen.trained_on
        else:
            seed_everything(seed)
            train_batches = Batches(feats, bundle.tokens, train_idx)
            standardize = Standardize.fit(train_batches) if self.grid.train.standardize else None
            model = build(pc.aggregator, pc.predictor, standardize)
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            history = fit(model, train_batches, self.grid.train, seed, self.device)
        t0 = time.perf_counter()
        metrics, decoded, generated, candidates = self.score(model, bundle, feats, test_idx, train_idx)
        eval_seconds = time.perf_counter() - t0
        test_refs = [bundle.refs[i] for i in test_idx]
        record = {
            "cell": pc.id,
            "fold": task.fold,
            "seed": seed,
            "metrics": metrics,
            "n_train": len(train_idx),
            "n_test": len(test_idx),
            "trainable_params": trainable,
            "eval_seconds": eval_seconds,
            "device": str(self.device),
            "host": socket.gethostname(),
            "features_computed": cached.computed,
            **history,
            **({"selection": selection} if selection is not None else {}),
        }
        predictions = {"indices": test_idx.tolist(), "predictions": decoded, "references": test_refs,
                       "tokens": generated, **({"candidates": candidates} if candidates is not None else {})}
        return record, predictions

    def score(
        self, model: CellModel, bundle: DatasetBundle, feats: np.ndarray, eval_idx: np.ndarray, train_idx: np.ndarray
    ) -> tuple[dict[str, float], list, list, list | None]:
        """Decode ``eval_idx`` with the grid's decoding (Viterbi transitions from ``train_idx``) and score it:
        (metrics, decoded actions, generated tokens, candidate sequences or None)."""
        vocabulary, batches = bundle.dataset.vocabulary, Batches(feats, bundle.tokens, eval_idx)
        batch_size, decode = self.grid.train.eval_batch_size, self.grid.decode
        if decode.viterbi:
            generated = viterbi_tokens(model, batches, batch_size, self.device, bundle.dataset, train_idx,
                                       vocabulary.eos)
        else:
            generated = predict(model, batches, batch_size, self.device)
        candidates = None
        if decode.candidates > 1:
            candidates = [[vocabulary.decode(c) for c in sample] for sample in
                          candidate_tokens(model, batches, batch_size, self.device, decode.candidates)]
        metrics, decoded = self.score_generated(bundle, eval_idx, generated, candidates)
        return metrics, decoded, generated, candidates

    def score_generated(self, bundle: DatasetBundle, eval_idx: np.ndarray, generated: list[list[int]],
                        candidates: list | None = None) -> tuple[dict[str, float], list]:
        """The metrics of generated token ids against ``eval_idx``'s references, and the decoded actions."""
        vocabulary = bundle.dataset.vocabulary
        decoded = [vocabulary.decode(g) for g in generated]
        refs = [bundle.refs[i] for i in eval_idx]
        return score(self.metrics, decoded, refs, vocabulary, candidates), decoded

    def score_together(self, models: list[CellModel], scope: str, bundle: DatasetBundle, feats: np.ndarray,
                       eval_idx: np.ndarray, train_idx: np.ndarray) -> list[dict[str, float]]:
        """Each model's metrics on ``eval_idx``, the models decoded together (:func:`decode_together`; ``scope`` as
        they trained). Raises ``NotImplementedError`` where the grid's decoding samples (``decode.candidates``) or
        the predictor has no vectorisable form of it."""
        decode, eos = self.grid.decode, bundle.dataset.vocabulary.eos
        if decode.candidates > 1:
            raise NotImplementedError(f"decode.candidates: {decode.candidates} samples from each model's own "
                                      "probabilities, which vmap cannot share one random draw over")
        batches, batch_size = Batches(feats, bundle.tokens, eval_idx), self.grid.train.eval_batch_size
        if decode.viterbi:
            to_tokens = viterbi_decoder(bundle.dataset, train_idx, eos)
            outputs = decode_together(models, scope, "logits", batches, batch_size, self.device)
        else:
            def to_tokens(ids: torch.Tensor) -> list[list[int]]:
                return [until_eos(row, eos) for row in ids.tolist()]

            outputs = decode_together(models, scope, "greedy_tokens", batches, batch_size, self.device)
        return [self.score_generated(bundle, eval_idx, to_tokens(out))[0] for out in outputs]


def raise_user_error(result: FoldResult) -> None:
    """Re-raise a worker's ``BenchkitError`` in the driver (same class, same line, same exit code)."""
    name, message = result.user_error or ("BenchkitError", "")
    cls = getattr(errors, name, BenchkitError)
    raise (cls if isinstance(cls, type) and issubclass(cls, BenchkitError) else BenchkitError)(message)


_WORKER: dict[str, FoldRunner] = {}


class RemoteFolds:
    """A picklable ``FoldTask -> FoldResult`` for executors whose workers are other processes or machines: the
    worker loads the plugins installed where it runs, parses the grid and plans it once per process."""

    def __init__(self, raw_grid: dict[str, Any], only: list[dict[str, str]] | None = None,
                 threads: int | None = None) -> None:
        self.raw_grid, self.only, self.threads = raw_grid, only, threads
        self.key = stable_hash([raw_grid, only])

    def runner(self) -> FoldRunner:
        if self.key not in _WORKER:
            from benchkit.registry.plugins import get_registry

            if self.threads:
                torch.set_num_threads(self.threads)
            _WORKER[self.key] = FoldRunner(parse_grid(self.raw_grid), get_registry(), only=self.only)
        return _WORKER[self.key]

    def __call__(self, task: FoldTask) -> FoldResult:
        try:
            runner = self.runner()
        except BenchkitError as e:
            return FoldResult(task.cell_id, task.fold, user_error=(type(e).__name__, str(e)))
        return runner(task)
