"""The Markdown report ``benchkit profile`` prints: every figure with its unit, convention and input shape."""

from __future__ import annotations

from typing import Any

PHASES = {
    "backbone": "backbone (once per clip)",
    "train_forward": "training forward",
    "train_step": "training forward + backward",
    "inference": "inference",
    "inference_reference": "inference, reference loop",
}


def _shape(dims) -> str:
    return "×".join(str(d) for d in dims)


def _g(flops: int) -> str:
    return f"{flops / 1e9:,.3f}"


def _inputs(shapes: dict[str, Any]) -> str:
    return ", ".join(f"{name} {_shape(dims)}" for name, dims in shapes.items())


def _load(env: dict[str, Any]) -> str:
    load = env.get("load_average")
    return f"load {load[0]:.1f} on {env.get('cpu_count')} CPUs, " if load and env["device"] == "cpu" else ""


def _header(result: dict[str, Any]) -> list[str]:
    d, env = result["detail"], result["environment"]
    labels = " + ".join(f"{k} {v}" for k, v in d["labels"].items() if v)
    i = d["input"]
    f = i["features"]
    grid = f"grid {f['grid'][0]}×{f['grid'][1]}, " if f["level"] == "patch" else ""
    chain = f"{f['level']} features T={f['frames']}, {grid}D={f['dim']}"
    if i["video"]:
        chain = f"video {_shape(i['video'])} uint8 → {chain}"
    if i["prefix_tokens"]:
        chain += f" → prefix {i['prefix_tokens']}×{i['prefix_dim']}"
    if "predictor" in d["labels"]:
        plural = "s" if i["actions"] != 1 else ""
        chain += f" → {i['actions']} action{plural} ({i['target_tokens']} target tokens: BOS, actions, EOS)"
    lines = [
        f"# Profile: {labels}",
        "",
        f"- input (one sample): {chain}",
        f"- environment: {env['device']} ({env['device_name']}), {env['dtype']}, {env['torch_threads']} threads, "
        f"{_load(env)}torch {env['torch']}, benchkit {env.get('benchkit')} ({(env.get('git_commit') or '?')[:10]}"
        f"{', dirty' if env.get('git_dirty') else ''})",
    ]
    if d.get("command"):
        lines.append(f"- reproduce: `{d['command']}`")
    return lines


def _parameters(result: dict[str, Any]) -> list[str]:
    lines = ["", "## Parameters", "", "| component | total | trainable | frozen |", "| --- | ---: | ---: | ---: |"]
    for r in result["detail"]["parameters"]:
        lines.append(f"| {r['component']} | {r['total']:,} | {r['trainable']:,} | {r['frozen']:,} |")
    return lines


def _flops(result: dict[str, Any]) -> list[str]:
    flops = result["detail"]["flops"]
    if not flops:
        return []
    lines = [
        "", "## FLOPs per sample",
        "",
        "Real FLOPs (a multiply-add = 2 FLOPs) of matrix products, convolutions and attention; MACs = FLOPs / 2 "
        "(what fvcore, timm and most papers call FLOPs). Batch 1.",
        "",
        "| phase | component | input | GFLOPs | GMACs |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for key, rec in flops.items():
        title = PHASES.get(key, key)
        if rec.get("output_tokens"):
            title += f" ({rec['output_tokens']} output tokens)"
        inputs = _inputs(rec["input"])
        rows = list(rec["components"].items())
        if len(rows) > 1:
            rows.append(("total", rec["flops"]))
        for i, (component, n) in enumerate(rows):
            lines.append(f"| {title if i == 0 else ''} | {component} | {inputs if i == 0 else ''} | {_g(n)} "
                         f"| {_g(n // 2)} |")
    if "backbone" in flops and "inference" in flops:
        n = flops["backbone"]["flops"] + flops["inference"]["flops"]
        lines.append(f"| inference + backbone | total | | {_g(n)} | {_g(n // 2)} |")
    lines.append("")
    for key, rec in flops.items():
        ops = ", ".join(f"{op.removeprefix('aten.')} {_g(n)}" for op, n in rec["by_op"].items())
        lines.append(f"- {PHASES.get(key, key)} by op (GFLOPs): {ops or 'none'}")
    formulas = {p: n for rec in flops.values() for p, n in rec["formulas"].items()}
    if formulas:
        lines.append("- module formulas used: " + ", ".join(sorted(formulas)))
    missing = sorted({p for rec in flops.values() for p in rec["unaccounted"]})
    lines.append("- modules with parameters and 0 FLOPs, not declared free: " + (", ".join(missing) or "none"))
    return lines


def _latency(result: dict[str, Any]) -> list[str]:
    rows = result["detail"]["latency"]
    if not rows:
        return []
    opts = result["detail"]["options"]
    lines = [
        "", "## Latency",
        "",
        f"`inference` = aggregate, then predict (decode {result['detail']['input']['actions']} actions); "
        f"`backbone` = encode one clip. torch.utils.benchmark after {opts['warmup']} warm-up calls: median and "
        f"interquartile range over blocks of runs, at least {opts['min_run_time']:g} s timed; {opts['dtype']}.",
        "",
        "| path | batch | median ms | IQR ms | ms / sample | samples / s | peak memory MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        mem = "" if r.get("peak_mem_mb") is None else f"{r['peak_mem_mb']:,.1f}"
        lines.append(f"| {r['path']} | {r['batch']} | {r['median_ms']:,.2f} | {r['iqr_ms']:,.2f} "
                     f"| {r['per_sample_ms']:,.2f} | {r['throughput']:,.1f} | {mem} |")
    methods = sorted({r["memory_method"] for r in rows if "memory_method" in r})
    if methods:
        lines += ["", "Peak memory: " + "; ".join(methods) + "."]
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    return "\n".join(_header(result) + _parameters(result) + _flops(result) + _latency(result)) + "\n"
