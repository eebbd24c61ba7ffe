"""The phases a composition is profiled in, per sample (docs/profiling.md, "Phases"):

- ``backbone``: ``backbone.encode`` of one clip — once per clip; features are cached and reused.
- ``train_forward``: ``predictor.loss(aggregator(features), tokens)`` with the target sequence teacher-forced
  (BOS, the actions, EOS), training mode.
- ``train_step``: the same forward and its backward.
- ``inference``: ``predictor.predict(aggregator(features))`` in evaluation mode: whatever the predictor does to
  produce its output — greedy decoding with the KV cache for ``prefix-gpt2``, the guided sampling loop for VEDiT.
- ``inference_reference``: the same with ``predictor.predict_reference`` when the predictor has one (InvPatch's
  reference loop: one sample at a time, no cache, the whole sequence recomputed at every step).

With random weights a greedy decoder stops wherever EOS happens to win the argmax; :func:`full_length` switches the
stop off so every sample decodes the whole target length, as a trained model does on a sample of that length.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from benchkit.profiling.compose import Composition, backbone_input, seeded


@contextlib.contextmanager
def full_length(predictor: Any) -> Iterator[None]:
    """Decode the full length: a predictor's integer ``eos`` is set to -1 (no token) for the duration."""
    eos = getattr(predictor, "eos", None)
    if isinstance(eos, int) and not isinstance(eos, bool):
        predictor.eos = -1
    try:
        yield
    finally:
        if isinstance(eos, int) and not isinstance(eos, bool):
            predictor.eos = eos


def head_inputs(comp: Composition, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random features at the composition's level and shape, and the target tokens (BOS, actions, EOS)."""
    spec = comp.feature_spec
    shape = (batch, spec.frames, spec.patches, spec.dim) if spec.level == "patch" else (batch, spec.frames, spec.dim)
    with seeded(seed):
        features = torch.randn(shape).to(comp.device)
    tokens = None
    if comp.predictor_spec is not None:
        vocab = comp.predictor_spec.vocabulary
        actions = [i % len(vocab.actions) for i in range(comp.actions)]
        row = vocab.encode(actions, comp.predictor_spec.max_len)
        tokens = torch.tensor([row] * batch, device=comp.device)
    return features, tokens


def _mode(comp: Composition, training: bool) -> None:
    comp.aggregator.train(training)
    if comp.predictor is not None:
        comp.predictor.train(training)


Stage = tuple[str, Any, Callable[[], Any]]
"""``(component kind, component, call)``: one component's share of a phase, counted on its own."""


def inference_stages(comp: Composition, features: torch.Tensor, method: str = "predict") -> list[Stage]:
    """Aggregate once (evaluation mode, no autograd), then the predictor's ``method`` on the prefix."""
    state: dict[str, Any] = {}

    def aggregate() -> torch.Tensor:
        _mode(comp, False)
        with torch.inference_mode():
            state["prefix"] = comp.aggregator(features)
        return state["prefix"]

    def predict() -> Any:
        with torch.inference_mode(), full_length(comp.predictor):
            return getattr(comp.predictor, method)(state["prefix"])

    stages = [("aggregator", comp.aggregator, aggregate)]
    return stages + ([("predictor", comp.predictor, predict)] if comp.predictor is not None else [])


def inference(comp: Composition, features: torch.Tensor, method: str = "predict") -> Callable[[], Any]:
    """The deployed path as one call (for latency): the stages of :func:`inference_stages` in order."""
    stages = inference_stages(comp, features, method)

    def run() -> Any:
        return [fn() for _, _, fn in stages][-1]

    return run


def training_stages(comp: Composition, features: torch.Tensor, tokens: torch.Tensor | None,
                    backward: bool) -> list[Stage]:
    """Training mode, teacher forcing. With ``backward``, each stage also runs its backward pass: the predictor
    from its loss down to the gradient of the prefix (when the aggregator is trainable), the aggregator from that
    gradient (a tensor of ones of the same shape: the same operations) down to its parameters."""
    state: dict[str, Any] = {}

    def aggregate() -> None:
        _mode(comp, True)
        prefix = comp.aggregator(features)
        state["prefix"] = prefix.detach().requires_grad_(prefix.requires_grad and backward)
        if backward and prefix.requires_grad:
            prefix.backward(torch.ones_like(prefix))
            comp.aggregator.zero_grad(set_to_none=True)

    def loss() -> None:
        value = comp.predictor.loss(state["prefix"], tokens)
        if backward and value.requires_grad:
            value.backward()
            comp.predictor.zero_grad(set_to_none=True)

    stages = [("aggregator", comp.aggregator, aggregate)]
    return stages + ([("predictor", comp.predictor, loss)] if comp.predictor is not None else [])


def encode(comp: Composition, batch: int = 1) -> Callable[[], Any]:
    videos = backbone_input(comp.backbone, comp.video_shape, comp.device, batch)

    def run() -> Any:
        with torch.inference_mode():
            return comp.backbone.encode(videos)

    return run
