"""Training throughput (samples/s) of benchkit's ``fit`` on memory-mapped float16 features, and where the time
goes: ``torch.profiler`` over the phases ``fit`` labels (``benchkit.data``, ``benchkit.forward``,
``benchkit.backward``, ``benchkit.optimizer``) and the ops that dominate.

``--perf-fit-baseline FILE`` also trains with another ``training.py`` (``fit`` and ``Batches`` from that file, e.g.
the commit before the training-loop fixes) on the same inputs from the same initial weights, timed in the same run,
and asserts both give the same loss curve.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from timing import median, timed
from torch.profiler import ProfilerActivity, profile
from training_setup import SCALES, build_model, write_features

from benchkit.grid.config import TrainConfig
from benchkit.learn import training
from benchkit.profiling import count_flops

PHASES = ("benchkit.data", "benchkit.forward", "benchkit.backward", "benchkit.optimizer")
SIZES = {"paper": None, "quickstart": (256, 32)}  # (samples, batch); paper: --perf-train-samples / -batch


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchkit_training_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _train(impl: ModuleType, model, state, feats, tokens, cfg: TrainConfig) -> dict:
    """Train ``model`` from ``state`` for ``cfg.epochs`` epochs with ``impl``'s ``fit`` and ``Batches``, after one
    untimed warm-up step (first-call allocations), from the same random state every time."""
    device = torch.device("cpu")
    warm = TrainConfig(**{**cfg.model_dump(), "epochs": 1})
    model.load_state_dict(state)
    torch.manual_seed(0)
    impl.fit(model, impl.Batches(feats, tokens, np.arange(cfg.batch_size)), warm, 0, device)
    model.load_state_dict(state)
    torch.manual_seed(0)
    return impl.fit(model, impl.Batches(feats, tokens, np.arange(len(tokens))), cfg, 0, device)


def _adamw_step_ms(model, **kind) -> float:
    """Median milliseconds of one AdamW step over the model's parameters (random gradients): the per-parameter
    loop (``foreach=False``, what ``fit`` used before) or the fused kernels (``fused=True``, what it uses now)."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1, **kind)
    optimizer.step()  # allocates the moments
    times: list[float] = []
    for _ in range(5):
        timed(optimizer.step, times)()
    model.zero_grad(set_to_none=True)
    return 1e3 * median(times)


def _train_step_flops(model, feats, tokens) -> int:
    """FLOPs of one sample's forward + backward (benchkit's counter, docs/profiling.md)."""
    x, t = torch.from_numpy(np.array(feats[:1])).float(), torch.from_numpy(tokens[:1])
    model.train()
    flops = count_flops(lambda: model.loss(x, t).backward(), {"model": model}, backward=True).total
    model.zero_grad(set_to_none=True)
    return flops


@pytest.mark.parametrize("scale", ["quickstart", "paper"])
def test_training_throughput(scale, benchmark, registry, record, measure, request, tmp_path):
    sizes = SIZES[scale] or (request.config.getoption("--perf-train-samples"),
                             request.config.getoption("--perf-train-batch"))
    samples, batch = sizes
    setup = SCALES[scale]
    feats, tokens = write_features(tmp_path, setup.spec, samples)
    model = build_model(registry, setup)
    state = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-4, device="cpu")
    rounds = 3 if scale == "quickstart" else 1

    histories: list[dict] = []
    measure(lambda: histories.append(_train(training, model, state, feats, tokens, cfg)), rounds=rounds,
            benchmark=benchmark)
    seconds = median([h["train_seconds"] for h in histories])
    assert all(np.isfinite(h["loss_curve"]).all() for h in histories)
    figures = {"samples": samples, "batch": batch, "train_s": seconds, "samples_per_s": samples / seconds}

    baseline_path = request.config.getoption("--perf-fit-baseline")
    if baseline_path:
        baseline = _load(baseline_path)
        runs = [(_train(baseline, model, state, feats, tokens, cfg), _train(training, model, state, feats, tokens,
                                                                              cfg)) for _ in range(rounds)]
        before = median([r[0]["train_seconds"] for r in runs])
        after = median([r[1]["train_seconds"] for r in runs])
        np.testing.assert_allclose(runs[0][1]["loss_curve"], runs[0][0]["loss_curve"], rtol=1e-4)
        figures.update(baseline=Path(baseline_path).name, before_samples_per_s=samples / before,
                       after_samples_per_s=samples / after, fix_speedup=before / after)

    model.load_state_dict(state)
    torch.manual_seed(0)
    batches = training.Batches(feats, tokens, np.arange(samples))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        training.fit(model, batches, cfg, 0, torch.device("cpu"))
        profiled = time.perf_counter() - start
    events = prof.key_averages()
    phase = {e.key: e.cpu_time_total / 1e6 for e in events if e.key in PHASES}
    assert set(phase) == set(PHASES), f"fit labels its phases for the profiler, got {sorted(phase)}"
    ops = sorted((e for e in events if not e.key.startswith(("benchkit.", "Optimizer.", "autograd::engine"))),
                 key=lambda e: e.self_cpu_time_total, reverse=True)[:5]
    self_total = sum(e.self_cpu_time_total for e in events)
    for name in PHASES:
        figures[name.removeprefix("benchkit.") + "_pct"] = 100 * phase[name] / profiled
    figures["other_pct"] = 100 * (1 - sum(phase.values()) / profiled)
    figures["top_ops"] = "; ".join(f"{e.key} {100 * e.self_cpu_time_total / self_total:.0f}%" for e in ops)

    figures.update(adamw_loop_ms=_adamw_step_ms(model, foreach=False), adamw_fused_ms=_adamw_step_ms(model, fused=True))
    model.load_state_dict(state)
    gflop = _train_step_flops(model, feats, tokens) / 1e9
    figures.update(train_gflop_per_sample=gflop, achieved_gflop_per_s=gflop * samples / seconds,
                   threads=torch.get_num_threads())
    record(benchmark, f"training {scale}: {setup.what}", **figures)
