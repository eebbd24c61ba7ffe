"""Profile a composition, or a grid cell: parameters, FLOPs per phase, latency, memory, environment
(docs/profiling.md). The result is plain JSON: ``{"summary", "detail", "environment", "conventions"}``.

``summary`` holds scalar figures for a leaderboard (keys carry their unit); ``detail`` everything behind them,
each figure with its input shape; ``conventions`` says in words what each summary key counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from benchkit.grid.config import ProfileConfig
from benchkit.profiling import phases
from benchkit.profiling.compose import Composition, build_backbone, build_composition, feature_spec_of
from benchkit.profiling.environment import environment
from benchkit.profiling.flops import FlopCount, count_flops
from benchkit.profiling.latency import time_call
from benchkit.profiling.memory import peak_memory
from benchkit.profiling.options import ProfileOptions
from benchkit.profiling.params import parameter_rows
from benchkit.registry.interfaces import FeatureSpec
from benchkit.registry.plugins import Registry
from benchkit.sequence.vocabulary import Vocabulary

CONVENTIONS = {
    "flops": "real FLOPs (a multiply-add is 2) of matrix products, convolutions and attention, counted with "
    "torch.utils.flop_counter.FlopCounterMode plus benchkit's formulas (LSTM/GRU/RNN, matrix-vector); "
    "elementwise work not counted; per sample (batch 1)",
    "macs": "multiply-accumulates = FLOPs / 2 (fvcore, timm and most papers report these as 'FLOPs')",
    "params_M": "parameters of every built component (backbone included when built), millions, shared ones once",
    "trainable_params_M": "parameters with requires_grad (aggregator + predictor), millions",
    "gflops": "inference per sample without the backbone: aggregator once + predictor.predict "
    "(prefix-gpt2: KV-cache greedy decoding of `output_tokens` tokens, BOS and EOS included; VEDiT: the guided "
    "sampling loop and the classifier), GFLOPs",
    "gflops_with_backbone": "gflops + backbone.encode of one clip",
    "train_gflops": "one training sample, forward and backward of aggregator + predictor",
    "latency_ms": "median wall time of the inference path (aggregate + predict) for one sample, batch 1, "
    "torch.utils.benchmark after warm-up",
    "throughput": "samples per second of the inference path at batch `batch`",
    "peak_mem_mb": "peak memory of one inference call at batch `batch`, MiB (CUDA: max allocated above "
    "baseline; CPU: RSS high-water mark above baseline)",
}
MODULE_DEPTH = 3  # module rows kept in the detail: component + two levels


def _phase_record(stages: dict[str, FlopCount], what: str, shapes: dict[str, Any]) -> dict[str, Any]:
    """One phase from its stages, one per component, each counted on its own (so a component's figure never
    depends on how the counter attributes a backward pass that crosses components)."""
    total = sum(c.total for c in stages.values())
    by_op: dict[str, int] = {}
    modules: dict[str, int] = {}
    for c in stages.values():
        for op, n in c.by_op.items():
            by_op[op] = by_op.get(op, 0) + n
        modules.update({p: n for p, n in c.modules.items() if p and n and p.count(".") < MODULE_DEPTH})
    return {
        "what": what,
        "input": shapes,
        "flops": total,
        "macs": total // 2,
        "components": {name: c.total for name, c in stages.items()},
        "by_op": by_op,
        "formulas": {p: n for c in stages.values() for p, n in c.formulas.items()},
        "modules": modules,
        "unaccounted": [p for c in stages.values() for p in c.unaccounted],
    }


def _decoded(out: Any) -> int | None:
    if isinstance(out, list) and out and isinstance(out[0], list):
        return max(len(seq) for seq in out)
    return None


def count_phases(comp: Composition, options: ProfileOptions) -> dict[str, dict[str, Any]]:
    """FLOPs per phase for one sample (see :mod:`benchkit.profiling.phases`)."""
    features, tokens = phases.head_inputs(comp, 1, options.seed)
    shapes = {"features": list(features.shape)}
    train_shapes = {**shapes, "tokens": list(tokens.shape)} if tokens is not None else shapes
    out: dict[str, dict[str, Any]] = {}
    if comp.backbone is not None and comp.video_shape is not None:
        stages = {"backbone": count_flops(phases.encode(comp), {"backbone": comp.backbone})}
        out["backbone"] = _phase_record(stages, "backbone.encode, one clip (once per clip; cached)",
                                        {"video": [1, *comp.video_shape, 3]})
    training = (("train_forward", False, "training forward, teacher forcing"),
                ("train_step", True, "training forward + backward"))
    for name, backward, what in training if options.training else ():
        stages = {kind: count_flops(fn, {kind: module}, backward=backward)
                  for kind, module, fn in phases.training_stages(comp, features, tokens, backward)}
        out[name] = _phase_record(stages, what, train_shapes)
    methods = [("inference", "predict")]
    if options.reference and comp.predictor is not None and hasattr(comp.predictor, "predict_reference"):
        methods.append(("inference_reference", "predict_reference"))
    for name, method in methods:
        results: list[Any] = []
        stages = {kind: count_flops(lambda fn=fn, out=results: out.append(fn()), {kind: module})
                  for kind, module, fn in phases.inference_stages(comp, features, method)}
        record = _phase_record(stages, "inference: aggregate once, then predictor." + method, shapes)
        record["output_tokens"] = _decoded(results[-1]) if comp.predictor is not None else None
        out[name] = record
    return out


def measure(comp: Composition, options: ProfileOptions) -> list[dict[str, Any]]:
    """Latency (and peak memory) of the inference path at batch 1 and ``options.batch``, and of the backbone on
    one clip when there is one."""
    dtype = options.torch_dtype()
    autocast = dtype != torch.float32

    def timed(fn):
        if not autocast:
            return fn

        def run():
            with torch.autocast(comp.device.type, dtype=dtype):
                return fn()

        return run

    runs = []
    for batch in sorted({1, options.batch}):
        features, _ = phases.head_inputs(comp, batch, options.seed)
        runs.append(("inference", batch, timed(phases.inference(comp, features))))
    if comp.backbone is not None and comp.video_shape is not None:
        runs.append(("backbone", 1, timed(phases.encode(comp))))
    rows = []
    for path, batch, fn in runs:
        row = {"path": path, "batch": batch, **time_call(fn, warmup=options.warmup, min_run_time=options.min_run_time)}
        row["per_sample_ms"] = row["median_ms"] / batch
        row["throughput"] = batch / (row["median_ms"] / 1e3)
        if options.memory:
            row["peak_mem_mb"], row["memory_method"] = peak_memory(fn, comp.device)
        rows.append(row)
    return rows


def _summary(params, flops, latency, options) -> dict[str, Any]:
    total = next(r for r in params if r.component == "total")
    s: dict[str, Any] = {"params_M": total.total / 1e6, "trainable_params_M": total.trainable / 1e6,
                         "frozen_params_M": total.frozen / 1e6}
    if flops:
        infer = flops["inference"]["flops"]
        s.update(gflops=infer / 1e9, gmacs=infer / 2e9)
        if "train_step" in flops:
            s["train_gflops"] = flops["train_step"]["flops"] / 1e9
        if "backbone" in flops:
            s["gflops_with_backbone"] = (infer + flops["backbone"]["flops"]) / 1e9
            s["backbone_gflops"] = flops["backbone"]["flops"] / 1e9
        s["output_tokens"] = flops["inference"].get("output_tokens")
    one = next((r for r in latency if r["path"] == "inference" and r["batch"] == 1), None)
    big = next((r for r in latency if r["path"] == "inference" and r["batch"] == options.batch), None)
    if one:
        s.update(latency_ms=one["median_ms"], latency_iqr_ms=one["iqr_ms"])
    if big:
        s.update(throughput=big["throughput"], batch=options.batch)
        if big.get("peak_mem_mb") is not None:
            s["peak_mem_mb"] = big["peak_mem_mb"]
    return s


def profile_composition(comp: Composition, options: ProfileOptions | None = None,
                        command: str | None = None) -> dict[str, Any]:
    """Everything ``options`` asks for, for one built composition."""
    options = options or ProfileOptions()
    params = parameter_rows(comp.parts())
    flops = count_phases(comp, options) if options.flops else {}
    latency = measure(comp, options) if options.latency else []
    spec = comp.feature_spec
    detail = {
        "labels": comp.labels,
        "input": {
            "video": [1, *comp.video_shape, 3] if comp.video_shape and comp.backbone is not None else None,
            "features": {"level": spec.level, "frames": spec.frames, "grid": list(spec.grid), "dim": spec.dim},
            "prefix_tokens": getattr(comp.aggregator, "num_tokens", None),
            "prefix_dim": getattr(comp.aggregator, "out_dim", None),
            "actions": comp.actions,
            "target_tokens": comp.actions + 2,
        },
        "parameters": [{"component": r.component, "total": r.total, "trainable": r.trainable,
                        "frozen": r.frozen} for r in params],
        "flops": flops,
        "latency": latency,
        "options": options.model_dump(),
    }
    if command:
        detail["command"] = command
    return {
        "summary": _summary(params, flops, latency, options),
        "detail": detail,
        "environment": environment(comp.device, options.dtype),
        "conventions": CONVENTIONS,
    }


def profile_cell(
    registry: Registry,
    cell: Any,
    spec: FeatureSpec | None,
    vocabulary: Vocabulary,
    max_len: int,
    options: ProfileConfig | Mapping[str, Any] | None = None,
    *,
    video_shape: tuple[int, int, int] | None = None,
    backbone: Any | None = None,
) -> dict[str, Any]:
    """Profile one planned grid cell (``benchkit.grid.plan.PlannedCell``) once, for its ``profile.json``.

    ``spec``: the cell's feature shape (from its cached features); ``None`` derives it by encoding one clip of
    ``video_shape`` with the backbone. ``vocabulary`` / ``max_len``: the dataset's (``max_len`` in tokens, BOS
    and EOS included). ``video_shape``: ``(frames, height, width)`` of one clip — given, the backbone phase is
    profiled too (``backbone``: an already built backbone, else it is built from the cell). ``options``: a
    :class:`ProfileOptions`, the grid's ``profile:`` section (``grid.profile``) or a mapping of its fields; ``None``:
    the defaults.
    """
    options = ProfileOptions.of({} if options is None else options)
    device = options.torch_device()
    if video_shape is not None and (options.backbone or spec is None) and backbone is None:
        backbone = build_backbone(registry, cell.backbone, options)
    if spec is None:
        if backbone is None or video_shape is None:
            raise ValueError("profile_cell needs the feature spec, or a backbone and a video shape to derive it")
        spec = feature_spec_of(backbone, video_shape, cell.cell.level, torch.device("cpu"))
    labels = cell.cell.labels()
    comp = build_composition(
        registry, aggregator=cell.aggregator, predictor=cell.predictor, spec=spec, vocabulary=vocabulary,
        actions=options.actions or max_len - 2, backbone=backbone if options.backbone else None,
        video_shape=video_shape, device=device, seed=options.seed,
        labels={k: str(labels.get(k, "")) for k in ("backbone", "aggregator", "predictor")},
    )
    result = profile_composition(comp, options)
    result["detail"]["cell"] = getattr(cell, "id", None)
    return result
