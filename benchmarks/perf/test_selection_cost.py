"""What hyper-parameter selection costs: K candidates trained together (``fit_together``, one vectorised model)
against one ordinary fit (K = 1), on the quickstart's cells at the quickstart's size, and the validation decoding
the K candidates add.

For each quickstart cell (CLS tokens at frame level; Mean, NetVLAD and LSTM at patch level; the tiny prefix GPT-2)
on features of the quickstart's shape (4 frames x 4 x 4 patches x 64, float16, memory-mapped), ``--perf-sel-samples``
inner training samples (800: the quickstart's 3-fold training part less its validation fifth) at batch 64:

- ``K = 1``: ``fit`` of one model, what a cell without selection trains;
- ``K = 4`` and ``K = 12``: ``fit_together`` of K learning-rate candidates, what a selecting cell trains;

each timed over ``--perf-sel-epochs`` epochs after one warm-up epoch, the three interleaved over
``--perf-sel-rounds`` rounds (medians). The ratio is the time of K candidates over the time of one fit on the same
samples. The test asserts the candidates trained vectorised and each one's loss curve equals its separate fit's
(rtol 1e-4), and reports the ratios against ``--perf-sel-max-4`` / ``--perf-sel-max-12`` (the targets: 2.0 and
4.0), failing when a ratio is over its target.

``test_selection_fold_cost`` measures what a user pays per fold: one fold of the real quickstart grid (its data,
features and cells; ``--perf-sel-epochs`` epochs) through the runner's ``FoldRunner``, without selection (K = 1:
train on the whole training part, test) and with K learning rates selected (train K on the training part less its
validation fifth, decode the validation samples with the K candidates together and score them, test the selected
model). Both record the validation decoding: one candidate's ``predict`` against the K candidates decoded together
(``decode_together``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timing import median, timed
from training_setup import VOCABULARY, write_features

from benchkit.grid.config import TrainConfig
from benchkit.learn.together import decode_together, fit_together
from benchkit.learn.training import Batches, CellModel, fit, predict, seed_everything
from benchkit.registry.interfaces import FeatureSpec, PredictorSpec

CELLS = {  # the quickstart's cells (benchmarks/quickstart.yaml)
    "CLS tokens (frame)": ("frame-tokens", "frame"),
    "Mean (patch)": ("mean", "patch"),
    "NetVLAD (patch)": ("netvlad-tiny", "patch"),
    "LSTM (patch)": ("lstm-tiny", "patch"),
}
LRS = [3e-3, 1e-3, 3e-4, 1e-4, 3e-3 / 2, 1e-3 / 2, 3e-4 / 2, 1e-4 / 2, 3e-3 / 4, 1e-3 / 4, 3e-4 / 4, 1e-4 / 4]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" in metafunc.fixturenames:
        metafunc.parametrize("cell", list(CELLS))


@pytest.fixture(scope="module")
def features(tmp_path_factory, request):
    samples = request.config.getoption("--perf-sel-samples")
    patch_spec = FeatureSpec("patch", 64, 4, (4, 4))
    feats, tokens = write_features(tmp_path_factory.mktemp("selection"), patch_spec, samples)
    tokens = tokens[:, :5]  # the quickstart's windows: BOS, 3 actions, EOS
    frame = np.ascontiguousarray(np.asarray(feats).mean(axis=2))  # frame-level tokens of the same shape family
    return {"patch": (feats, patch_spec), "frame": (frame, FeatureSpec("frame", 64, 4, None))}, tokens


def test_selection_cost(cell, features, registry, record, request):
    epochs = request.config.getoption("--perf-sel-epochs")
    rounds = request.config.getoption("--perf-sel-rounds")
    aggregator, level = CELLS[cell]
    by_level, tokens = features
    feats, spec = by_level[level]
    batches = Batches(feats, tokens, np.arange(len(tokens)))
    device = torch.device("cpu")

    def build(_k: int = 0) -> CellModel:
        seed_everything(0)
        agg = registry.build("aggregator", registry.resolve("aggregator", aggregator, {}), spec)
        pspec = PredictorSpec(agg.out_dim, agg.num_tokens, VOCABULARY, tokens.shape[1])
        return CellModel(agg, registry.build("predictor", registry.resolve("predictor", "prefix-gpt2-tiny", {}),
                                             pspec))

    def configs(k: int, n: int = epochs) -> list[TrainConfig]:
        return [TrainConfig(epochs=n, batch_size=64, lr=lr, warmup=0.1) for lr in LRS[:k]]

    def one() -> dict:
        return fit(build(), batches, configs(1)[0], 0, device)

    def together(k: int):
        return lambda: fit_together(build, configs(k), batches, 0, device)

    fit(build(), batches, configs(1, 1)[0], 0, device)  # warm-up: first-call allocations
    fit_together(build, configs(4, 1), batches, 0, device)
    times: dict[int, list[float]] = {1: [], 4: [], 12: []}
    runs = {1: timed(one, times[1]), 4: timed(together(4), times[4]), 12: timed(together(12), times[12])}
    out = {}
    for _ in range(rounds):
        for k, run in runs.items():
            out[k] = run()
    assert out[4].vectorised and out[12].vectorised
    np.testing.assert_allclose(out[4].histories[0]["loss_curve"], out[1]["loss_curve"], rtol=1e-4)

    decode, decode_12 = [], []  # validation decoding (a quarter of the samples): one candidate; 12 together
    val = Batches(feats, tokens, np.arange(len(tokens) // 4))
    trained = out[12]
    for _ in range(rounds):
        timed(lambda: predict(trained.models[0], val, 256, device), decode)()
        timed(lambda: decode_together(trained.models, trained.scope, "greedy_tokens", val, 256, device), decode_12)()
    t1, t4, t12 = (median(times[k]) for k in (1, 4, 12))
    figures = {"epochs": epochs, "samples": len(tokens), "k1_s": t1, "k4_s": t4, "k12_s": t12,
               "ratio_k4": t4 / t1, "ratio_k12": t12 / t1, "decode_one_candidate_s": median(decode),
               "decode_12_together_s": median(decode_12)}
    record(None, f"selection cost, {cell}", **figures)
    max4, max12 = request.config.getoption("--perf-sel-max-4"), request.config.getoption("--perf-sel-max-12")
    assert t4 / t1 <= max4 and t12 / t1 <= max12, f"ratios {t4 / t1:.2f} (K=4), {t12 / t1:.2f} (K=12)"


@pytest.fixture(scope="module")
def quickstart(registry):
    from benchkit.grid.config import load_grid

    return load_grid("benchmarks/quickstart.yaml")


def test_selection_fold_cost(cell, quickstart, registry, record, request):
    from benchkit.grid.config import parse_grid
    from benchkit.grid.plan import plan
    from benchkit.run.folds import Datasets, FoldRunner, FoldTask

    epochs = request.config.getoption("--perf-sel-epochs")
    rounds = request.config.getoption("--perf-sel-rounds")
    label = cell.split(" (")[0]
    raw = quickstart.model_dump(mode="json")
    raw["train"]["epochs"] = epochs
    runners = {}
    datasets = None
    for k in (1, 4, 12):
        grid_raw = {**raw, "train": {**raw["train"], **({"lr": {"select": LRS[:k]}} if k > 1 else {})}}
        grid = parse_grid(grid_raw)
        cells = [pc for pc in plan(grid, registry) if pc.cell.aggregator.display == label]
        datasets = datasets or Datasets(registry, grid)
        runners[k] = (FoldRunner(grid, registry, cells=cells, datasets=datasets), cells[0].id)
    for runner, cell_id in runners.values():  # warm-up: features (cached), first-call allocations
        runner.run(FoldTask(cell_id, 0))
    times: dict[int, list[float]] = {k: [] for k in runners}
    records = {}
    for _ in range(rounds):
        for k, (runner, cell_id) in runners.items():
            records[k] = timed(lambda r=runner, c=cell_id: r.run(FoldTask(c, 0))[0], times[k])()
    assert all(t["vectorised"] and t["decoding"] == "together" for k in (4, 12)
               for t in records[k]["selection"]["training"])
    t1, t4, t12 = (median(times[k]) for k in (1, 4, 12))
    record(None, f"selection fold cost, {cell}", epochs=epochs, k1_s=t1, k4_s=t4, k12_s=t12, ratio_k4=t4 / t1,
           ratio_k12=t12 / t1, n_train_k1=records[1]["n_train"], n_train_k4=records[4]["n_train"],
           validation_k4_s=records[4]["selection"]["validation_seconds"],
           validation_k12_s=records[12]["selection"]["validation_seconds"])
