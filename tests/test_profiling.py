"""The profiler against analytic counts (docs/profiling.md): Linear, attention, LSTM/GRU from their gate
parameters, GPT-2 decoding with and without the KV cache, a Hugging Face backbone; the guard that no module with
parameters counts 0 FLOPs unless declared free, over every registered aggregator and predictor; options and the
profile record."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchkit.errors import ConfigError
from benchkit.grid.config import ProfileConfig, parse_grid
from benchkit.profiling import (
    ProfileOptions,
    build_composition,
    count_flops,
    declare_free,
    formulas,
    phases,
    profile_cell,
    profile_composition,
    render_markdown,
)
from benchkit.profiling.params import count
from benchkit.profiling.profiler import count_phases
from benchkit.registry.interfaces import FeatureSpec, PredictorSpec
from benchkit.registry.plugins import Resolved
from benchkit.sequence.vocabulary import Vocabulary

VOCAB = Vocabulary(tuple(f"a{i}" for i in range(5)), delimiter=True)


def raw_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


# -- analytic counts ----------------------------------------------------------------------------------------------


def test_linear_is_two_flops_per_weight_per_row_and_backward_doubles_or_triples_it():
    lin = nn.Linear(8, 5)
    x = torch.randn(3, 7, 8)
    forward = 2 * 3 * 7 * 8 * 5
    c = count_flops(lambda: lin(x), {"lin": lin})
    assert c.total == forward and c.modules["lin"] == forward and c.by_op == {"aten.addmm": forward}
    # backward: the weight gradient only (input needs none), then input and weight gradients
    assert count_flops(lambda: lin(x).sum().backward(), {"lin": lin}, backward=True).total == 2 * forward
    xg = x.clone().requires_grad_()
    assert count_flops(lambda: lin(xg).sum().backward(), {"lin": lin}, backward=True).total == 3 * forward


@pytest.mark.parametrize("mode", ["train", "inference"])
def test_attention_block_matches_its_products_also_on_the_fused_fast_path(mode):
    b, n, e, heads, ff = 2, 5, 16, 4, 24
    block = nn.TransformerEncoderLayer(e, heads, ff, dropout=0.0, batch_first=True)
    x = torch.randn(b, n, e)
    projections = 2 * b * n * e * (3 * e) + 2 * b * n * e * e  # q, k, v and output projections
    scores = 2 * (2 * b * n * n * e)  # Q K^T and A V over all heads
    mlp = 2 * (2 * b * n * e * ff)
    if mode == "train":
        c = count_flops(lambda: block(x), {"block": block})
    else:
        block.eval()
        with torch.inference_mode():
            assert raw_flops(lambda: block(x)) == 0  # the fused kernel the bare counter cannot see
            c = count_flops(lambda: block(x), {"block": block})
    assert c.total == projections + scores + mlp
    assert c.modules["block.self_attn"] == projections + scores
    assert c.unaccounted == []


def gate_parameters(gates: int, inputs: int, hidden: int) -> int:
    """``gates · (i·h + h·h + 2h)``: W_ih, W_hh and the two bias vectors of one layer and direction."""
    return gates * (inputs * hidden + hidden * hidden + 2 * hidden)


@pytest.mark.parametrize(("cell", "gates"), [(nn.LSTM, 4), (nn.GRU, 3)])
def test_recurrent_flops_follow_from_the_gate_parameter_count(cell, gates):
    b, t, i, h = 3, 7, 6, 10
    rnn = cell(i, h, num_layers=2, bidirectional=True, batch_first=True)
    per_direction = [gate_parameters(gates, i, h), gate_parameters(gates, 2 * h, h)]  # layer 2 reads both directions
    assert count(rnn)[0] == 2 * sum(per_direction)
    expected = sum(2 * b * t * 2 * (p - gates * 2 * h) for p in per_direction)  # weights only, biases elementwise
    x = torch.randn(b, t, i)
    raw = raw_flops(lambda: rnn(x))
    c = count_flops(lambda: rnn(x), {"rnn": rnn})
    assert c.total == expected and c.by_op == {f"formula:{cell.__name__}": expected} and c.unaccounted == []
    assert raw in (0, expected)  # the bare counter: 0 (one fused kernel) or, when it decomposes, the same products
    assert count_flops(lambda: rnn(x)[0].sum().backward(), {"rnn": rnn}, backward=True).total == 3 * expected
    packed = nn.utils.rnn.pack_padded_sequence(x, [7, 4, 2], batch_first=True)
    assert count_flops(lambda: rnn(packed), {"rnn": rnn}).total == expected * (7 + 4 + 2) // (b * t)


def test_gpt2_decoding_with_and_without_kv_cache(registry):
    k, n, d, layers = 3, 6, 32, 2
    spec = PredictorSpec(d, k, VOCAB, n)
    gpt = registry.build("predictor", registry.resolve("predictor", "prefix-gpt2",
                                                       {"n_layer": layers, "n_embd": d, "n_head": 2,
                                                        "n_positions": 64}), spec).eval()

    def forward(new: int, keys: int) -> int:  # `new` tokens attending to `keys` positions, then all logits
        return layers * (24 * new * d * d + 4 * new * keys * d) + 2 * new * d * VOCAB.size

    prefix = torch.randn(1, k, d)
    with phases.full_length(gpt):
        out = []
        cached = count_flops(lambda: out.append(gpt.predict(prefix)), {"predictor": gpt})
        reference = count_flops(lambda: gpt.predict_reference(prefix), {"predictor": gpt})
    assert len(out[0][0]) == n  # the whole length, EOS or not
    assert cached.total == forward(k, k) + sum(forward(1, k + s) for s in range(1, n))
    assert reference.total == sum(forward(k + s, k + s) for s in range(n))
    assert cached.unaccounted == [] and reference.unaccounted == []


def test_hugging_face_backbone_matches_its_layer_formula(registry):
    d, inter, heads = 32, 64, 2
    config = {"hidden_size": d, "intermediate_size": inter, "num_hidden_layers": 1, "num_attention_heads": heads}
    resolved = registry.resolve("backbone", "videomae", {"weights": "random", "config": config, "device": "cpu"})
    backbone = registry.build("backbone", resolved)
    videos = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8)
    c = count_flops(lambda: backbone.encode(videos), {"backbone": backbone})
    out = backbone.encode(videos)
    steps, patches = out.patch.shape[1:3]
    tokens = steps * patches
    embed = 2 * tokens * (3 * 2 * 16 * 16) * d  # tubelet 2 x 16 x 16 x 3 → D
    layer = 2 * tokens * d * 4 * d + 4 * tokens * tokens * d + 2 * 2 * tokens * d * inter
    assert c.total == embed + layer
    assert c.unaccounted == []


# -- the guard --------------------------------------------------------------------------------------------------


def smallest(registry, kind: str, plugin: str, *context) -> Resolved:
    """The plugin's smallest configuration among its defaults and presets (counted on the meta device); a
    sampling loop cut to 2 steps (the guard is about modules, not about how often they run)."""
    entry = registry.entries[kind][plugin]
    fast = {"steps": 2} if "steps" in inspect.signature(entry.factory).parameters else {}
    options = [registry.resolve(kind, plugin, fast)]
    options += [registry.resolve(kind, name, fast) for name, p in registry.presets[kind].items() if p.plugin == plugin]

    def size(resolved: Resolved) -> int:
        try:
            with torch.device("meta"):
                return count(registry.build(kind, resolved, *context))[0]
        except Exception:
            return 1 << 62

    return min(options, key=size)


def guard(comp) -> list[str]:
    record = count_phases(comp, ProfileOptions(latency=False))
    return sorted({p for phase in record.values() for p in phase["unaccounted"]})


def test_no_aggregator_has_parameters_that_count_zero_flops(registry):
    specs = {"patch": FeatureSpec("patch", 16, 4, (4, 4)), "frame": FeatureSpec("frame", 16, 4, (4, 4))}
    checked = 0
    for name, entry in registry.entries["aggregator"].items():
        for level in entry.meta.get("levels", ()):
            resolved = smallest(registry, "aggregator", name, specs[level])
            comp = build_composition(registry, aggregator=resolved, predictor=None, spec=specs[level],
                                     vocabulary=VOCAB, actions=2, labels={"aggregator": name})
            assert guard(comp) == [], f"{name} at {level} level"
            checked += 1
    assert checked >= 10


def test_no_predictor_has_parameters_that_count_zero_flops(registry):
    spec = FeatureSpec("frame", 32, 4, (1, 1))
    frame_tokens = registry.resolve("aggregator", "frame-tokens")
    for name in registry.entries["predictor"]:
        pspec = PredictorSpec(32, 4, VOCAB, 4)
        resolved = smallest(registry, "predictor", name, pspec)
        comp = build_composition(registry, aggregator=frame_tokens, predictor=resolved, spec=spec,
                                 vocabulary=VOCAB, actions=2, labels={"aggregator": "frame-tokens", "predictor": name})
        assert guard(comp) == [], name
        assert count_phases(comp, ProfileOptions(latency=False))["inference"]["components"]["predictor"] > 0


def test_a_parameter_used_only_elementwise_is_reported_until_declared_free():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.gain = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.lin(x) * self.gain

    m = Scaled()
    x = torch.randn(2, 4)
    assert count_flops(lambda: m(x), {"m": m}).unaccounted == ["m"]
    declare_free(Scaled, "elementwise gain")
    try:
        assert count_flops(lambda: m(x), {"m": m}).unaccounted == []
    finally:
        formulas._FREE.pop(Scaled)


# -- options and records -----------------------------------------------------------------------------------------


def test_grid_section_options():
    """The grid's `profile:` section is typed in the schema (ProfileConfig); ProfileOptions is that model plus
    torch, and says what is wrong in one line, from the grid or from Python."""
    grid = {"name": "g", "dataset": "d", "backbone": "b", "aggregator": "a", "predictor": "p", "metrics": ["m"]}
    assert parse_grid(grid).profile is None and parse_grid({**grid, "profile": False}).profile is None
    assert parse_grid({**grid, "profile": True}).profile == ProfileConfig()
    section = parse_grid({**grid, "profile": {"batch": 8, "latency": False, "min_run_time": 1}}).profile
    opts = ProfileOptions.of(section)
    assert opts.batch == 8 and not opts.latency and opts.min_run_time == 1.0 and opts.torch_dtype() is torch.float32
    assert opts.model_dump() == {**ProfileOptions().model_dump(), "batch": 8, "latency": False}
    assert ProfileOptions.of({"seed": 3}) == ProfileOptions(seed=3) and ProfileOptions.of(opts) is opts
    for bad, message in [({"batchsize": 8}, "profile.batchsize: unknown key"), ({"batch": "8"}, "profile.batch: "),
                         ({"flops": 1}, "profile.flops: "), ({"dtype": "fp8"}, "profile.dtype: "),
                         ({"device": "tpu"}, "profile.device: "), ({"device": "cuda:x"}, "profile.device: "),
                         ({"batch": 0}, "profile.batch: "), ({"actions": 0}, "profile.actions: "),
                         ({"min_run_time": 0}, "profile.min_run_time: "), ({"warmup": -1}, "profile.warmup: ")]:
        with pytest.raises(ConfigError, match=f"^grid: {message}"):
            parse_grid({**grid, "profile": bad})
        with pytest.raises(ConfigError, match=f"^{message}"):
            ProfileOptions(**bad)
    with pytest.raises(ConfigError, match=r"^grid: profile: .*expected true, false or a mapping of options"):
        parse_grid({**grid, "profile": "yes"})


def test_profile_record_is_labelled_and_consistent(registry):
    backbone = registry.build("backbone", registry.resolve("backbone", "random-vit-tiny"))
    comp = build_composition(
        registry, aggregator=registry.resolve("aggregator", "invpatch-tiny"),
        predictor=registry.resolve("predictor", "prefix-gpt2-tiny"), spec=FeatureSpec("patch", 64, 4, (4, 4)),
        vocabulary=VOCAB, actions=3, backbone=backbone, video_shape=(4, 16, 16),
        labels={"backbone": "random-vit-tiny", "aggregator": "invpatch-tiny", "predictor": "prefix-gpt2-tiny"},
    )
    result = profile_composition(comp, ProfileOptions(batch=2, min_run_time=0.01, warmup=1), command="benchkit x")
    s, d, env = result["summary"], result["detail"], result["environment"]
    flops = d["flops"]
    assert s["gflops"] == flops["inference"]["flops"] / 1e9 and s["gmacs"] == s["gflops"] / 2
    assert s["gflops_with_backbone"] == (flops["inference"]["flops"] + flops["backbone"]["flops"]) / 1e9
    assert s["output_tokens"] == 5 and flops["inference_reference"]["output_tokens"] == 5
    assert flops["inference_reference"]["flops"] > flops["inference"]["flops"]
    # backward ≈ 2x forward for products (attention's too, whichever kernel runs); a first layer: weights only
    assert 2 * flops["train_forward"]["flops"] < flops["train_step"]["flops"] < 3.1 * flops["train_forward"]["flops"]
    assert flops["inference"]["components"]["aggregator"] == flops["train_forward"]["components"]["aggregator"]
    assert s["trainable_params_M"] * 1e6 == sum(count(m)[1] for m in (comp.aggregator, comp.predictor))
    assert s["params_M"] > s["trainable_params_M"] and s["latency_ms"] > 0 and s["throughput"] > 0
    assert {(r["path"], r["batch"]) for r in d["latency"]} == {("inference", 1), ("inference", 2), ("backbone", 1)}
    assert {"device_name", "dtype", "torch_threads", "torch"} <= set(env) and env["dtype"] == "float32"
    assert set(result["conventions"]) >= {"gflops", "macs", "latency_ms", "throughput", "peak_mem_mb"}
    text = render_markdown(result)
    needles = ("GMACs", "video 1×4×16×16×3", "reproduce: `benchkit x`", "| inference | 2 |", "declared free: none")
    for needle in needles:
        assert needle in text


def test_profile_cell_for_the_grid_section(registry, tiny_grid):
    from benchkit.grid.config import parse_grid
    from benchkit.grid.plan import plan

    tiny_grid.update(level="patch", aggregator="invpatch-tiny")
    cell = plan(parse_grid(tiny_grid, "tiny.yaml"), registry)[0]
    spec = FeatureSpec("patch", 16, 6, (4, 4))
    result = profile_cell(registry, cell, spec, VOCAB, 6, {"latency": False})
    assert result["detail"]["cell"] == cell.id and result["detail"]["input"]["actions"] == 4
    assert set(result["summary"]) >= {"params_M", "trainable_params_M", "gflops", "gmacs", "train_gflops"}
    derived = profile_cell(registry, cell, None, VOCAB, 6, {"latency": False, "reference": False},
                           video_shape=(6, 16, 16))
    assert derived["detail"]["input"]["features"] == {"level": "patch", "frames": 6, "grid": [4, 4], "dim": 16}
    assert derived["summary"]["backbone_gflops"] > 0 and "inference_reference" not in derived["detail"]["flops"]
    assert derived["summary"]["gflops"] == result["summary"]["gflops"]
