"""Candidates trained together: K models of one architecture over the same batches, as one vectorised model.

Hyper-parameter selection (benchkit/run/selection.py) trains every candidate of a cell on the same inner training
data. Candidates that share an architecture and a training loop (they differ only in optimiser settings: lr,
weight decay, betas, eps, warm-up, schedule, gradient clipping) run as one model: each step stacks the K models'
trainable parameters, evaluates the K losses with ``torch.func.vmap`` over ``functional_call`` on one batch, and
back-propagates their sum (each model's gradient is its own loss's). One AdamW holds the K models as K parameter
groups with their own settings and schedules, so the optimiser arithmetic is the one a separate :func:`fit` does.

Randomness inside the model (dropout, stochastic depth, flow-matching noise) uses ``randomness="same"``: one draw
per step of the shape a single model draws, which is the draw a separate fit with the same seed makes. On the CPU,
``F.dropout`` fills its mask in the memory order of its input, which ``vmap`` changes for a permuted tensor (the
output of a batch-first ``nn.MultiheadAttention``); :class:`_SameDropout` draws the mask in the order a single model
would. So on the CPU each candidate follows the same trajectory as its own fit, up to the float rounding of batched
kernels (tests/test_selection.py states the tolerance); on a GPU the masks are drawn differently (same
distribution), so candidates match separate fits in distribution, not draw for draw.

An aggregator whose kernel has no batching rule (the LSTM's fused ``aten::lstm``) makes the first step fall back to
``scope="predictor"``: each candidate's aggregator runs on its own (all from the same random state), and ``vmap``
runs the predictors on the stacked prefixes; the fold record says which scope ran.

Candidates are decoded together the same way (:func:`decode_together`): ``vmap`` over the predictor's
``greedy_tokens`` (greedy ids as one fixed-length tensor) or its ``logits`` (Viterbi decoding), with the aggregators
vectorised or one by one as in training; a predictor without the method decodes its candidates one after the other.

Attention runs on the math backend inside ``vmap`` (the fused CPU kernels have no batching rule, so ``vmap`` would
loop over the candidates). A model that ``vmap`` cannot trace (an op without a batching rule and no fallback, an
in-place write of a per-candidate value into a shared tensor) trains its candidates one after the other with
:func:`fit`, and the fold record says so with the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode
from torch.profiler import record_function

from benchkit.grid.config import TrainConfig
from benchkit.learn.training import Batches, CellModel, fit, loss_options, lr_factor


@dataclass
class Trained:
    """The K models of one architecture after training, with their histories and how they were trained."""

    models: list[CellModel]
    histories: list[dict]  # per model: loss_curve, train_seconds (the group's), diverged
    vectorised: bool
    reason: str = ""  # why they trained one after the other (or, vectorised, why only the predictors were)
    scope: str = ""  # vectorised: "model" (vmap over the whole model) or "predictor" (over the predictors)
    states: list = field(default_factory=list)  # per model: the random state its own fit would end in


class _SameDropout(TorchFunctionMode):
    """``F.dropout`` as the CPU kernel computes it (``input * bernoulli(1 - p) / (1 - p)``), with the mask filled in
    the memory order of the input's logical strides: the order in which a single model's kernel draws it."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.dropout:
            return func(*args, **kwargs)
        names = ("input", "p", "training", "inplace")
        bound = {**dict(zip(names, args, strict=False)), **kwargs}
        x, p, training = bound["input"], bound.get("p", 0.5), bound.get("training", True)
        if not training or p == 0:
            return x
        if p == 1:
            return x * 0
        order = sorted(range(x.dim()), key=lambda d: (-x.stride(d), d))
        noise = torch.empty([x.shape[d] for d in order], dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(1 - p).div_(1 - p).permute([order.index(d) for d in range(x.dim())])
        return x * noise


class _Loss(nn.Module):
    """``module.loss(x, tokens)`` as a forward, under the math attention backend and (on the CPU) the single-model
    dropout order, so that ``functional_call`` + ``vmap`` can run it. ``module`` is the whole cell model, or only
    its predictor (then ``x`` is the prefix)."""

    def __init__(self, module: nn.Module, options: dict[str, float]) -> None:
        super().__init__()
        self.module, self.options = module, options

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernels have no batching rule (vmap would loop)
            if x.device.type != "cpu":
                return self.module.loss(x, tokens, **self.options)
            with _SameDropout():
                return self.module.loss(x, tokens, **self.options)


def rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The global random state (CPU, and the device's when it is a GPU)."""
    return torch.random.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.random.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def fit_together(
    build: Callable[[int], CellModel], configs: list[TrainConfig], batches: Batches, seed: int,
    device: torch.device, vectorise: bool = True,
) -> Trained:
    """Train ``len(configs)`` models, ``build(k)`` being candidate ``k``'s (it seeds before building, as a separate
    fold does). The configs must share the training loop (epochs, batch size, drop_last, label smoothing)."""
    if vectorise and len(configs) > 1:
        try:
            return _vectorised(build, configs, batches, seed, device)
        except _NotVectorisable as e:
            reason = str(e)
    else:
        reason = "one candidate" if len(configs) == 1 else "selection.vectorise is false"
    return _sequential(build, configs, batches, seed, device, reason)


class _NotVectorisable(Exception):
    pass


def _sequential(build, configs, batches, seed, device, reason: str) -> Trained:
    models, histories, states = [], [], []
    for k, cfg in enumerate(configs):
        model = build(k)
        try:
            history = {**fit(model, batches, cfg, seed, device), "diverged": False}
        except FloatingPointError as e:
            history = {"loss_curve": [], "train_seconds": 0.0, "diverged": True, "error": str(e)}
        models.append(model)
        histories.append(history)
        states.append(rng_state(device))
    return Trained(models, histories, vectorised=False, reason=reason, states=states)


class _Step:
    """One training step of K models on one batch: their K losses, computed with ``vmap`` over the whole model
    (``scope="model"``), or with each model's own aggregator and ``vmap`` over the predictors
    (``scope="predictor"``: for an aggregator without a batching rule, the LSTM's fused kernel). The per-candidate
    aggregators start from one random state, as under ``randomness="same"``, so each draws what its separate fit
    would."""

    def __init__(self, models: list[CellModel], options: dict[str, float], scope: str, device: torch.device) -> None:
        self.models, self.scope, self.device = models, scope, device
        base = models[0] if scope == "model" else models[0].predictor
        self.names = [n for n, p in base.named_parameters() if p.requires_grad]
        owners = models if scope == "model" else [m.predictor for m in models]
        self.params = [[dict(o.named_parameters())[n] for n in self.names] for o in owners]
        wrapper = _Loss(base, options)
        in_dims = (0, None, None) if scope == "model" else (0, 0, None)
        self.losses_of = vmap(lambda p, x, t: functional_call(wrapper, p, (x, t)), in_dims=in_dims,
                              randomness="same")

    def __call__(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        stacked = {f"module.{n}": torch.stack([ps[i] for ps in self.params]) for i, n in enumerate(self.names)}
        if self.scope == "predictor":
            state, prefixes = rng_state(self.device), []
            for model in self.models:
                set_rng_state(state, self.device)
                prefixes.append(model.prefix(x))
            x = torch.stack(prefixes)
        return self.losses_of(stacked, x, tokens)


def _vectorised(build, configs, batches, seed, device) -> Trained:
    models = [build(k).to(device).train() for k in range(len(configs))]
    cfg, k_models = configs[0], len(configs)
    options = loss_options(models[0].predictor, cfg)
    params = [[p for p in m.parameters() if p.requires_grad] for m in models]
    if not params[0]:
        raise _NotVectorisable("nothing to train")
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params[0])
    optimizer = torch.optim.AdamW(
        [{"params": ps, "lr": c.lr, "betas": c.betas, "eps": c.eps, "weight_decay": c.weight_decay}
         for ps, c in zip(params, configs, strict=True)],
        fused=fused,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [lr_factor(c) for c in configs])
    scopes = ["model", "predictor"]  # the first step tries the whole model, then the predictors only
    step, failures = _Step(models, options, scopes[0], device), []
    generator = torch.Generator().manual_seed(seed)
    curves: list[list[float]] = [[] for _ in configs]
    diverged = [False] * k_models
    first, start = True, time.perf_counter()
    for _ in range(cfg.epochs):
        total, count = torch.zeros(k_models, dtype=torch.float64, device=device), 0
        for x, tokens in batches.epoch(cfg.batch_size, generator, cfg.drop_last, device):
            optimizer.zero_grad(set_to_none=True)
            while True:
                state = rng_state(device)
                try:
                    with record_function("benchkit.forward"):
                        losses = step(x, tokens)
                    with record_function("benchkit.backward"):
                        losses.sum().backward()
                    break
                except (RuntimeError, NotImplementedError, TypeError, ValueError) as e:
                    if not first:
                        raise
                    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    failures.append(f"{step.scope}: {type(e).__name__}: {text[:160]}")
                    if step.scope == scopes[-1]:  # before any weight moved
                        raise _NotVectorisable("; ".join(failures)) from e
                    optimizer.zero_grad(set_to_none=True)
                    set_rng_state(state, device)  # the failed attempt's draws are not a step
                    step = _Step(models, options, scopes[scopes.index(step.scope) + 1], device)
            first = False
            for ps, c in zip(params, configs, strict=True):
                if c.grad_clip:
                    nn.utils.clip_grad_norm_(ps, c.grad_clip)
            with record_function("benchkit.optimizer"):
                optimizer.step()
            total += losses.detach().double() * len(tokens)
            count += len(tokens)
        means = (total / max(1, count)).tolist()
        for k, mean in enumerate(means):  # a diverged candidate's curve ends at its last finite epoch
            if diverged[k]:
                continue
            diverged[k] = not math.isfinite(mean)
            if not diverged[k]:
                curves[k].append(mean)
        if all(diverged):
            break
        scheduler.step()
    seconds = time.perf_counter() - start
    histories = [{"loss_curve": curve, "train_seconds": seconds, "diverged": bad}
                 for curve, bad in zip(curves, diverged, strict=True)]
    reason = "" if step.scope == "model" else f"aggregators one by one, predictors vectorised ({failures[0]})"
    return Trained(models, histories, vectorised=True, reason=reason, scope=step.scope,
                   states=[rng_state(device)] * k_models)


class _Decode(nn.Module):
    """``predictor.<method>(prefix)`` as a forward, under the math attention backend (as :class:`_Loss`). ``module``
    is the whole cell model (``x``: features) or its predictor (``x``: the prefix)."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module, self.method = module, method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        predictor = getattr(self.module, "predictor", self.module)
        with sdpa_kernel(SDPBackend.MATH):
            prefix = self.module.prefix(x) if predictor is not self.module else x
            return getattr(predictor, self.method)(prefix)


@torch.no_grad()
def decode_together(models: list[CellModel], scope: str, method: str, batches: Batches, batch_size: int,
                    device: torch.device) -> list[torch.Tensor]:
    """``predictor.<method>(prefix)`` of every model over ``batches`` (in order), as one vectorised pass per batch:
    per model a tensor, the batches' outputs concatenated. ``scope`` is how the models trained together ("model":
    ``vmap`` over the whole model; "predictor": each aggregator on its own, all from one random state, ``vmap`` over
    the predictors). Random draws inside (VEDiT's start noise) use ``randomness="same"``: the draws a separate decode
    from the same random state makes. Raises ``NotImplementedError`` when the predictor has no ``method``."""
    if not callable(getattr(models[0].predictor, method, None)):
        raise NotImplementedError(f"{type(models[0].predictor).__name__} has no {method}()")
    for model in models:
        model.to(device).eval()
    base = models[0] if scope == "model" else models[0].predictor
    owners = models if scope == "model" else [m.predictor for m in models]
    names = [n for n, _ in base.named_parameters()]
    stacked = {f"module.{n}": torch.stack([dict(o.named_parameters())[n] for o in owners]) for n in names}
    decoder = _Decode(base, method)
    run = vmap(lambda p, x: functional_call(decoder, p, (x,)), in_dims=(0, None if scope == "model" else 0),
               randomness="same")
    outputs: list[torch.Tensor] = []
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused inference kernel of nn.MultiheadAttention has no
    try:  # batching rule (vmap would loop over the candidates); its slow path computes the same attention
        for x, _ in batches.epoch(batch_size, None, drop_last=False, device=device):
            if scope == "predictor":
                state, prefixes = rng_state(device), []
                for model in models:
                    set_rng_state(state, device)
                    prefixes.append(model.prefix(x))
                x = torch.stack(prefixes)
            outputs.append(run(stacked, x))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return list(torch.cat(outputs, dim=1).unbind(0))
