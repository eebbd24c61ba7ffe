"""GPU benchmark of the paper-scale compositions with random weights; prints one Markdown table (issue 11).

    python benchmarks/gpu/run.py --device cuda [--dtype bf16|fp32|both] [--compile on|off|both] [--batch 64]
        [--models invpatch,vedit-large-2048] [--json out.json] [--peak-tflops X]
    python benchmarks/gpu/run.py --tiny --device cpu          # tiny shapes, seconds on a CPU (tests/test_gpu_script.py)

Models: ``invpatch`` is the InvPatch runtime analysis (spec invpatch.md §7): VideoMAE ViT-B/16 on 16 x 224² clips
(``videomae-vitb16``, ``weights: random``), ``invpatch-paper`` and ``prefix-gpt2-paper`` decoding 16 actions; any
VEDiT preset (``vedit-large-2048`` ...) runs on 8 seen clips of SigLIP width 1152 (``frame-tokens``) with 16
target slots over COIN's 778 steps (specs/vedit.md), no backbone. Per (model, dtype, compile) row:

- latency of one 16-action sequence at batch 1: ``e2e`` = the backbone on one clip, then aggregate and decode
  (paper: 41.8 ms on an RTX 3090); ``head`` = aggregate and decode from cached features (``torch.utils.benchmark``,
  median after warm-up; decoding runs the full length);
- throughput, sequences/s, of the same paths at ``--batch``;
- training step time at ``--batch``: benchkit's ``fit`` (fused AdamW, float16 features from RAM) over
  ``--train-steps`` steps after untimed warm-up steps; the backbone is frozen and its features cached, so no
  backbone in the step;
- achieved TFLOP/s of that step (FLOPs of forward + backward per sample, benchkit's counter, x batch / step time)
  and its share of the device's dense peak for the dtype (``device_peaks.py``, or ``--peak-tflops``).

Then, per (model, dtype), the cost of hyper-parameter selection (``--candidates``, default ``1,4,12``): the
training step time of K candidates trained together as one vectorised model (``fit_together``, docs/grid.md)
against benchkit's ``fit`` of one model (K = 1), at ``--batch``, and their ratio (the CPU targets at quickstart
size: K = 4 at most 2x, K = 12 at most 4x; docs/benchmarks.md); and the greedy decoding of a batch by the K
trained candidates together (``decode_together``, as selection decodes validation) against one model's
``predict``.

``bf16``: ``torch.autocast`` to bfloat16 (the backbone in its own ``precision: bf16``). ``compile``:
``torch.compile`` of the aggregator, the predictor's submodules and the backbone's module, in place.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS
from device_peaks import peak_tflops

from benchkit.grid.config import TrainConfig
from benchkit.learn.together import decode_together, fit_together
from benchkit.learn.training import Batches, CellModel, fit, predict
from benchkit.profiling import ProfileOptions, build_composition
from benchkit.profiling.compose import Composition, backbone_input, build_backbone, feature_spec_of
from benchkit.profiling.environment import environment
from benchkit.profiling.latency import time_call
from benchkit.profiling.params import count, modules_of
from benchkit.profiling.phases import full_length, head_inputs, inference
from benchkit.profiling.profiler import count_phases
from benchkit.registry.interfaces import FeatureSpec
from benchkit.registry.plugins import Registry, get_registry
from benchkit.sequence.vocabulary import Vocabulary

DTYPES = {"fp32": ("float32", None), "bf16": ("bfloat16", torch.bfloat16)}
MUGEN = Vocabulary(MUGEN_ACTIONS, delimiter=True)
COIN = Vocabulary(tuple(f"step{i}" for i in range(778)))


@dataclass(frozen=True)
class Model:
    """One composition: presets, and either a backbone with its clip shape or the feature shape it reads."""

    key: str
    label: str
    aggregator: str
    predictor: str
    vocabulary: Vocabulary
    backbone: tuple[str, dict[str, Any]] | None = None
    video: tuple[int, int, int] | None = None  # frames, height, width
    features: FeatureSpec | None = None
    level: str = "patch"


def models(keys: list[str], tiny: bool) -> list[Model]:
    out = []
    for key in keys:
        if key == "invpatch" and tiny:
            out.append(Model(key, "random-vit-tiny + invpatch-tiny + prefix-gpt2-tiny", "invpatch-tiny",
                             "prefix-gpt2-tiny", MUGEN, ("random-vit-tiny", {}), (8, 16, 16)))
        elif key == "invpatch":
            out.append(Model(key, "VideoMAE ViT-B/16 (random) + invpatch-paper + prefix-gpt2-paper", "invpatch-paper",
                             "prefix-gpt2-paper", MUGEN, ("videomae-vitb16", {"weights": "random"}), (16, 224, 224)))
        else:  # a VEDiT preset
            width, clips = (64, 4) if tiny else (1152, 8)
            out.append(Model(key, f"{key} on {clips} clips x {width}", "frame-tokens", key, COIN,
                             features=FeatureSpec("frame", width, clips, (1, 1)), level="frame"))
    return out


def build(registry: Registry, model: Model, args: argparse.Namespace, dtype: str) -> Composition:
    """The composition with seeded random weights on ``args.device`` (the backbone at ``dtype``'s precision)."""
    options = ProfileOptions(device=args.device, dtype=DTYPES[dtype][0], reference=False, seed=0)
    backbone, spec = None, model.features
    if model.backbone is not None:
        backbone = build_backbone(registry, registry.resolve("backbone", *model.backbone), options)
        spec = feature_spec_of(backbone, model.video, model.level, torch.device("cpu"))
    return build_composition(
        registry, aggregator=registry.resolve("aggregator", model.aggregator, {}),
        predictor=registry.resolve("predictor", model.predictor, {}), spec=spec, vocabulary=model.vocabulary,
        actions=args.actions, labels={"aggregator": model.aggregator, "predictor": model.predictor},
        backbone=backbone, video_shape=model.video, device=torch.device(args.device), seed=0,
    )


def compile_in_place(comp: Composition, backend: str) -> None:
    comp.aggregator.compile(backend=backend)
    for child in comp.predictor.children():
        child.compile(backend=backend)
    if comp.backbone is None:
        return
    if isinstance(comp.backbone, torch.nn.Module):  # a backbone module whose encode is not its forward
        comp.backbone.encode = torch.compile(comp.backbone.encode, backend=backend)
    else:
        for module in modules_of(comp.backbone):
            module.compile(backend=backend)


def end_to_end(comp: Composition, batch: int) -> Callable[[], Any]:
    """The backbone on ``batch`` clips, then aggregate and decode (the full length) its features."""
    videos = backbone_input(comp.backbone, comp.video_shape, comp.device, batch)
    level = comp.feature_spec.level

    def run() -> Any:
        with torch.inference_mode(), full_length(comp.predictor):
            out = comp.backbone.encode(videos)
            features = (out.patch if level == "patch" else out.frame).to(comp.device)
            return comp.predictor.predict(comp.aggregator(features))

    return run


@contextlib.contextmanager
def precision(device: torch.device, dtype: str) -> Iterator[None]:
    cast = DTYPES[dtype][1]
    with torch.autocast(device.type, dtype=cast) if cast is not None else contextlib.nullcontext():
        yield


def under(device: torch.device, dtype: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with precision(device, dtype):
            return fn()

    return run


def train_data(comp: Composition, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Float16 features (as the cache stores them) and encoded random ``comp.actions``-action targets."""
    spec, vocab = comp.feature_spec, comp.predictor_spec.vocabulary
    shape = (spec.frames, spec.patches, spec.dim) if spec.level == "patch" else (spec.frames, spec.dim)
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((samples, *shape), dtype=np.float32).astype(np.float16)
    tokens = [vocab.encode(rng.integers(0, len(vocab.actions), comp.actions).tolist(), comp.actions + 2)
              for _ in range(samples)]
    return feats, np.array(tokens, dtype=np.int64)


def train_step_seconds(comp: Composition, args: argparse.Namespace, dtype: str) -> float:
    """Seconds per step of ``fit`` at ``args.batch``, after ``args.warmup`` untimed steps."""
    model = CellModel(comp.aggregator, comp.predictor)
    feats, tokens = train_data(comp, args.batch * max(args.train_steps, args.warmup))
    cfg = TrainConfig(epochs=1, batch_size=args.batch, lr=1e-4, device="cpu" if comp.device.type == "cpu" else "cuda")
    with precision(comp.device, dtype):
        if args.warmup:
            fit(model, Batches(feats, tokens, np.arange(args.batch * args.warmup)), cfg, 0, comp.device)
        history = fit(model, Batches(feats, tokens, np.arange(args.batch * args.train_steps)), cfg, 0, comp.device)
    return history["train_seconds"] / args.train_steps


def candidate_rows(registry: Registry, model: Model, dtype: str, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Training step time of K candidates (learning rates) trained together, for each K of ``args.candidates``,
    and its ratio to one ``fit`` (K = 1), after ``args.warmup`` untimed steps of each; then the time to decode a
    batch with the K trained candidates together (one model's ``predict`` at K = 1) and its ratio. Yields a row per K
    as it is measured (an error ends the rows with one that says so)."""
    try:
        comp = build(registry, model, args, dtype)
        device = comp.device

        def make(_k: int = 0) -> CellModel:
            torch.manual_seed(0)
            aggregator = registry.build("aggregator", registry.resolve("aggregator", model.aggregator, {}),
                                        comp.feature_spec)
            predictor = registry.build("predictor", registry.resolve("predictor", model.predictor, {}),
                                       comp.predictor_spec)
            return CellModel(aggregator, predictor).to(device)

        feats, tokens = train_data(comp, args.batch * max(args.train_steps, args.warmup))
        warm = Batches(feats, tokens, np.arange(args.batch * args.warmup)) if args.warmup else None
        timed = Batches(feats, tokens, np.arange(args.batch * args.train_steps))
        base = base_decode = None
        for k in args.candidates:
            cfgs = [TrainConfig(epochs=1, batch_size=args.batch, lr=1e-4 / (j + 1),
                                device="cpu" if device.type == "cpu" else "cuda") for j in range(k)]
            row: dict[str, Any] = {"model": model.key, "dtype": dtype, "k": k}
            with precision(device, dtype):
                if k == 1:
                    if warm is not None:
                        fit(make(), warm, cfgs[0], 0, device)
                    single = make()
                    seconds, row["vectorised"] = fit(single, timed, cfgs[0], 0, device)["train_seconds"], None

                    def decode(single: CellModel = single) -> Any:
                        return predict(single, timed, args.batch, device)
                else:
                    if warm is not None:
                        fit_together(make, cfgs, warm, 0, device)
                    trained = fit_together(make, cfgs, timed, 0, device)
                    seconds = sum(h["train_seconds"] for h in trained.histories) if not trained.vectorised \
                        else trained.histories[0]["train_seconds"]
                    row["vectorised"], row["reason"] = trained.vectorised, trained.reason

                    def decode(trained: Any = trained) -> Any:
                        if not trained.vectorised:  # they trained one by one: decode them so, as selection does
                            return [predict(m, timed, args.batch, device) for m in trained.models]
                        return decode_together(trained.models, trained.scope, "greedy_tokens", timed, args.batch,
                                               device)
                row["decode_ms"] = time_call(decode, warmup=1)["median_ms"] / args.train_steps
            row["step_ms"] = 1e3 * seconds / args.train_steps
            base = row["step_ms"] if k == 1 else base
            row["ratio"] = row["step_ms"] / base if base else None
            base_decode = row["decode_ms"] if k == 1 else base_decode
            row["decode_ratio"] = row["decode_ms"] / base_decode if base_decode else None
            if device.type == "cuda":
                row["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
                torch.cuda.reset_peak_memory_stats(device)
            yield row
    except Exception as e:  # an OOM at large K is a result, reported in the table
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        yield {"model": model.key, "dtype": dtype, "error": f"{type(e).__name__}: {str(e).strip()[:200]}",
               "traceback": traceback.format_exc()}


CANDIDATE_COLUMNS = [
    ("model", "model", "{}"), ("dtype", "dtype", "{}"), ("k", "K", "{}"), ("vectorised", "vectorised", "{}"),
    ("step_ms", "train step ms (b=B)", "{:.1f}"), ("ratio", "x of K = 1", "{:.2f}"),
    ("decode_ms", "decode ms (b=B)", "{:.1f}"), ("decode_ratio", "decode x of K = 1", "{:.2f}"),
    ("peak_mem_gb", "peak GiB", "{:.1f}"),
]


def flops_of(comp: Composition) -> dict[str, float]:
    """Per sample (benchkit's counter): inference (aggregate + decode), backbone (one clip), training step."""
    phases = count_phases(comp, ProfileOptions(device=str(comp.device), reference=False, seed=0))
    return {"inference": phases["inference"]["flops"], "backbone": phases.get("backbone", {}).get("flops", 0),
            "train_step": phases["train_step"]["flops"]}


def measure(registry: Registry, model: Model, dtype: str, compiled: bool, args: argparse.Namespace,
            flops: dict[str, dict[str, float]]) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model.key, "label": model.label, "dtype": dtype, "compile": compiled,
                           "batch": args.batch, "actions": args.actions}
    try:
        comp = build(registry, model, args, dtype)
        row["params_M"] = count(*(obj for _, obj in comp.parts().values()))[0] / 1e6
        if model.key not in flops:
            flops[model.key] = flops_of(comp)
        row["gflops_per_seq"] = (flops[model.key]["inference"] + flops[model.key]["backbone"]) / 1e9
        if compiled:
            compile_in_place(comp, args.compile_backend)
        timing = {"warmup": max(1, args.warmup), "min_run_time": args.min_run_time}
        paths = {"head": lambda b: inference(comp, head_inputs(comp, b, 0)[0])}
        if comp.backbone is not None:
            paths["e2e"] = lambda b: end_to_end(comp, b)
        for name, make in paths.items():
            row[f"{name}_latency_ms"] = time_call(under(comp.device, dtype, make(1)), **timing)["median_ms"]
            batched = time_call(under(comp.device, dtype, make(args.batch)), **timing)["median_ms"]
            row[f"{name}_seq_per_s"] = args.batch / (batched / 1e3)
        row["train_step_ms"] = 1e3 * train_step_seconds(comp, args, dtype)
        row["train_tflops"] = flops[model.key]["train_step"] * args.batch / (row["train_step_ms"] / 1e3) / 1e12
        peak = args.peak_tflops or peak_tflops(device_name(args), dtype)[0]
        row["peak_pct"] = 100 * row["train_tflops"] / peak if peak else None
    except Exception as e:  # one row's failure (OOM, a compiler error) is reported in the table, not fatal
        row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        row["traceback"] = traceback.format_exc()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return row


def device_name(args: argparse.Namespace) -> str:
    device = torch.device(args.device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from benchkit.profiling.environment import cpu_name

    return cpu_name()


COLUMNS = [
    ("model", "model", "{}"), ("dtype", "dtype", "{}"), ("compile", "compile", "{}"),
    ("params_M", "params (M)", "{:.4g}"), ("gflops_per_seq", "GFLOPs / seq", "{:.4g}"),
    ("e2e_latency_ms", "e2e ms (b=1)", "{:.2f}"), ("head_latency_ms", "head ms (b=1)", "{:.2f}"),
    ("e2e_seq_per_s", "e2e seq/s (b=B)", "{:.1f}"), ("head_seq_per_s", "head seq/s (b=B)", "{:.1f}"),
    ("train_step_ms", "train step ms (b=B)", "{:.1f}"), ("train_tflops", "train TFLOP/s", "{:.3g}"),
    ("peak_pct", "% of peak", "{:.1f}"),
]


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]] = COLUMNS) -> str:
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |",
             "| " + " | ".join("---" if i < 3 else "---:" for i in range(len(columns))) + " |"]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("—" if value is None else fmt.format("on" if value is True else "off" if value is False
                                                              else value))
        if row.get("error"):
            cells[-1] = f"error: {row['error']}"
        elif row.get("reason"):  # trained one by one, or only the predictors vectorised: say why
            cells[-1] += f" ({row['reason']})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["bf16", "fp32", "both"], default="both")
    p.add_argument("--compile", choices=["on", "off", "both"], default="both")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("--batch", type=int, default=None, help="throughput and training batch (default 64; tiny: 4)")
    p.add_argument("--actions", type=int, default=None, help="actions per sequence (default 16; tiny: 4)")
    p.add_argument("--models", default=None,
                   help="comma-separated: invpatch and VEDiT presets (default: invpatch,vedit-single-1280,"
                   "vedit-large-2048; tiny: invpatch,vedit-tiny)")
    p.add_argument("--train-steps", type=int, default=None, help="timed training steps (default 5; tiny: 2)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls / training steps before timing")
    p.add_argument("--min-run-time", type=float, default=None, help="seconds timed per latency figure (default 1)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, overriding device_peaks.py")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    p.add_argument("--candidates", default=None,
                   help="K values of the selection-cost table, comma-separated, 1 first (default 1,4,12; tiny: 1,2); "
                   "'off' skips it")
    p.add_argument("--only-candidates", action="store_true",
                   help="skip the latency, throughput and training rows: only the candidates table")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (CPU tests)")
    p.add_argument("--json", type=Path, default=None,
                   help="also write rows and environment here (rewritten after every row)")
    args = p.parse_args(argv)
    tiny = args.tiny
    args.batch = args.batch or (4 if tiny else 64)
    args.actions = args.actions or (4 if tiny else 16)
    args.train_steps = args.train_steps or (2 if tiny else 5)
    args.min_run_time = args.min_run_time or (0.01 if tiny else 1.0)
    text = args.candidates or ("1,2" if tiny else "1,4,12")
    args.candidates = [] if text == "off" else [int(k) for k in text.split(",")]
    if args.only_candidates and not args.candidates:
        p.error("--only-candidates needs --candidates (not 'off')")
    if args.candidates and args.candidates[0] != 1:
        p.error("--candidates: the list starts with 1 (the baseline of the ratios)")
    args.models = (args.models or ("invpatch,vedit-tiny" if tiny else "invpatch,vedit-single-1280,vedit-large-2048"))
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = get_registry()
    dtypes = ["fp32", "bf16"] if args.dtype == "both" else [args.dtype]
    compiles = [False, True] if args.compile == "both" else [args.compile == "on"]
    flops: dict[str, dict[str, float]] = {}
    device = torch.device(args.device)
    env = environment(device, "+".join(DTYPES[d][0] for d in dtypes))
    peaks = {d: args.peak_tflops or peak_tflops(device_name(args), d)[0] for d in dtypes}
    command = shlex.join(["python", "benchmarks/gpu/run.py", *(sys.argv[1:] if argv is None else argv)])
    rows: list[dict[str, Any]] = []
    selection: list[dict[str, Any]] = []

    def save() -> None:
        """The JSON so far, rewritten after every row, so that a run stopped part-way keeps what it measured."""
        if args.json:
            args.json.write_text(json.dumps({"command": command, "environment": env, "peak_tflops": peaks,
                                             "flops": flops, "rows": rows, "selection": selection}, indent=2,
                                            default=str) + "\n")

    for m in models(args.models.split(","), args.tiny) if not args.only_candidates else []:
        for dtype in dtypes:
            for c in compiles:
                rows.append(measure(registry, m, dtype, c, args, flops))
                save()
    for m in models(args.models.split(","), args.tiny) if args.candidates else []:
        for dtype in dtypes:
            for row in candidate_rows(registry, m, dtype, args):
                selection.append(row)
                save()
    print(f"# GPU benchmark: {device_name(args)} ({device}), torch {env['torch']}, {env['torch_threads']} threads")
    print(f"\n- command: `{command}`")
    print(f"- batch B = {args.batch}, {args.actions} actions per sequence, {args.train_steps} timed training steps; "
          f"peak TFLOP/s: " + ", ".join(f"{d} {p if p else 'unknown'}" for d, p in peaks.items()))
    if rows:
        print("- e2e = backbone + aggregate + decode; head = aggregate + decode from cached features\n")
        print(table(rows))
    if selection:
        print(f"\n## Candidates trained together (hyper-parameter selection), batch {args.batch}\n")
        print(table(selection, CANDIDATE_COLUMNS))
    for row in [*rows, *selection]:
        if row.get("error"):
            print(f"\n{row['model']} {row['dtype']} compile={row.get('compile', '')}:\n{row['traceback']}",
                  file=sys.stderr)
    save()
    return rows + selection


if __name__ == "__main__":
    sys.exit(1 if any(row.get("error") for row in main()) else 0)
