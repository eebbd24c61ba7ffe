"""Attention FLOPs do not depend on the kernel PyTorch picks (docs/profiling.md, "Attention"): every SDPA variant
and the fused multi-head-attention fast path count as the math path does; the guard lists an attention module
whose ``Q·Kᵀ`` and ``A·V`` products were not counted. CUDA-only kernels run on the meta device (shapes only)."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from benchkit.profiling import count_flops, formulas
from benchkit.profiling.attention import (
    ATTENTION_FORMULAS,
    FORMULA_BY_NAME,
    cudnn_backward_op,
    cudnn_forward_op,
    flash_forward_op,
    sdpa_flops,
)

aten = torch.ops.aten
B, H, L, S, E, EV = 2, 3, 5, 7, 8, 4  # EV: the value width (the CPU flash kernel wants E)


def qkv(device: str = "cpu", grad: bool = False, heads_kv: int = H) -> tuple[torch.Tensor, ...]:
    if device == "meta":  # shapes only; the CUDA kernels' meta functions want half precision
        shapes = ((B, H, L, E), (B, heads_kv, S, E), (B, heads_kv, S, EV))
        return tuple(torch.empty(*shape, device="meta", dtype=torch.float16) for shape in shapes)
    shapes = ((B, H, L, E), (B, heads_kv, S, E), (B, heads_kv, S, E))
    return tuple(torch.randn(*shape, requires_grad=grad) for shape in shapes)


FORWARD = 2 * B * H * L * S * E + 2 * B * H * L * S * EV  # Q·Kᵀ and A·V
FORWARD_CPU = 2 * 2 * B * H * L * S * E


class SDPA(nn.Module):
    """Projection-free attention over given q, k, v: what any module calling SDPA does."""

    def forward(self, q, k, v, **kw):
        return F.scaled_dot_product_attention(q, k, v, **kw)


def mapped(fn) -> FlopCounterMode:
    with FlopCounterMode(display=False, custom_mapping=formulas.OP_FORMULAS) as counter:
        fn()
    return counter


# -- the variants that run on CPU -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, None])
def test_sdpa_counts_the_same_on_every_cpu_kernel_forward_and_backward(backend):
    attn = SDPA()
    q, k, v = qkv(grad=True)
    with sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext():  # None: torch's choice
        fwd = count_flops(lambda: attn(q, k, v), {"attn": attn})
        step = count_flops(lambda: attn(q, k, v).sum().backward(), {"attn": attn}, backward=True)
        with torch.inference_mode():  # the composite op reaches the counter undecomposed there
            inference = count_flops(lambda: attn(q.detach(), k.detach(), v.detach()), {"attn": attn})
    assert fwd.total == inference.total == FORWARD_CPU == sdpa_flops(q.shape, k.shape, v.shape)
    assert step.total == 3 * FORWARD_CPU  # backward: dA, dV, dQ, dK, twice the forward
    for c in (fwd, step, inference):
        assert c.unaccounted == [] and c.attention["attn"] == "counted" and set(c.attention.values()) == {"counted"}


@pytest.mark.skipif(torch.__version__ < "2.5", reason="enable_gqa came with torch 2.5")
def test_grouped_query_attention_counts_query_heads():
    attn, (q, k, v) = SDPA(), qkv(heads_kv=1)
    for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
        with sdpa_kernel([backend]):
            assert count_flops(lambda: attn(q, k, v, enable_gqa=True), {"attn": attn}).total == FORWARD_CPU


@pytest.mark.parametrize("layer", ["mha", "encoder"])
def test_fused_fast_path_counts_as_the_unfused_modules(layer):
    b, n, e, heads, ff = 2, 5, 16, 4, 24
    if layer == "mha":
        module = nn.MultiheadAttention(e, heads, batch_first=True).eval()
        call, op = (lambda x: module(x, x, x)), "aten._native_multi_head_attention"
    else:
        module = nn.TransformerEncoderLayer(e, heads, ff, dropout=0.0, batch_first=True).eval()
        call, op = module, "aten._transformer_encoder_layer_fwd"
    x = torch.randn(b, n, e)
    expected = 2 * b * n * e * 4 * e + 4 * b * n * n * e + (4 * b * n * e * ff if layer == "encoder" else 0)
    with torch.inference_mode():
        fast = mapped(lambda: call(x))  # fast path on (the default): one fused op
        unfused = count_flops(lambda: call(x), {"m": module})  # count_flops turns it off, for attribution
    assert {str(k): v for k, v in fast.get_flop_counts()["Global"].items()} == {op: expected}
    assert unfused.total == expected and unfused.unaccounted == []


def test_fast_path_on_a_padded_batch_counts_the_real_tokens():
    e, heads, ff, lengths = 16, 4, 24, (5, 3)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(e, heads, ff, dropout=0.0, batch_first=True), 1).eval()
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "nested tensors are a prototype"
        counter = mapped(lambda: enc(torch.randn(2, 5, e), src_key_padding_mask=mask))
    tokens = sum(lengths)
    expected = 2 * tokens * e * 4 * e + 4 * sum(n * n for n in lengths) * e + 4 * tokens * e * ff
    assert counter.get_total_flops() == expected


# -- the CUDA-only kernels, by shape (meta tensors) -----------------------------------------------------------------


def _sdpa_level(name: str, q, k, v):
    """Call one SDPA-level kernel and its backward on meta tensors."""
    meta = {"device": "meta", "dtype": torch.float16}
    op, grad_out = getattr(aten, name), torch.empty(B, H, L, EV, **meta)
    bias, mask4 = torch.empty(B, H, L, S, **meta), [True, True, True, False]
    if name == "_scaled_dot_product_flash_attention":
        o = op(q, k, v)
        return o, lambda: aten._scaled_dot_product_flash_attention_backward(
            grad_out, q, k, v, o[0], o[1], o[2], o[3], o[4], o[5], 0.0, False, o[6], o[7])
    if name == "_scaled_dot_product_efficient_attention":
        o = op(q, k, v, None, True)
        return o, lambda: aten._scaled_dot_product_efficient_attention_backward(
            grad_out, q, k, v, bias, o[0], o[1], o[2], o[3], 0.0, mask4)
    if name == "_scaled_dot_product_cudnn_attention":
        o = op(q, k, v, None, True)
        return o, lambda: aten._scaled_dot_product_cudnn_attention_backward(
            grad_out, q, k, v, o[0], o[1], o[6], o[7], bias, o[2], o[3], o[4], o[5], 0.0, False)
    o = op(q, k, v)  # _scaled_dot_product_fused_attention_overrideable
    return o, lambda: aten._scaled_dot_product_fused_attention_overrideable_backward(
        grad_out, q, k, v, bias, mask4, o[0], o[1], o[2], o[3], o[4], o[5], 0.0, False, o[6], o[7])


SDPA_LEVEL = ["_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
              "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_fused_attention_overrideable"]


@pytest.mark.parametrize("name", SDPA_LEVEL)
def test_cuda_kernels_are_registered_and_count_as_the_math_path(name):
    if not hasattr(aten, name):
        pytest.skip(f"aten.{name} is not in torch {torch.__version__}")
    assert ATTENTION_FORMULAS[getattr(aten, name)] is formulas.OP_FORMULAS[getattr(aten, name)]
    assert formulas.OP_FORMULAS[getattr(aten, f"{name}_backward")] is FORMULA_BY_NAME[f"{name}_backward"]
    q, k, v = qkv("meta")
    backward = []
    try:
        forward = mapped(lambda: backward.append(_sdpa_level(name, q, k, v)[1]))
        counted_backward = mapped(backward[0])
    except (NotImplementedError, RuntimeError) as error:  # no meta kernel in this torch: the formula alone
        pytest.skip(f"aten.{name} has no meta kernel here ({error})")
    assert forward.get_total_flops() == FORWARD and counted_backward.get_total_flops() == 2 * FORWARD


def test_low_level_kernels_dense_and_packed():
    q, k, v = (t.transpose(1, 2).contiguous() for t in qkv("meta"))  # (B, L, H, E): the kernels' own layout
    grad_out = torch.empty(B, L, H, EV, device="meta", dtype=torch.float16)
    try:
        o = aten._flash_attention_forward(q, k, v, None, None, L, S, 0.0, False, False)
        flash = mapped(lambda: aten._flash_attention_forward(q, k, v, None, None, L, S, 0.0, False, False))
        flash_bw = mapped(lambda: aten._flash_attention_backward(
            grad_out, q, k, v, o[0], o[1], None, None, L, S, 0.0, False, o[2], o[3]))
        e = aten._efficient_attention_forward(q, k, v, None, None, None, L, S, 0.0, 0, True)
        eff = mapped(lambda: aten._efficient_attention_forward(q, k, v, None, None, None, L, S, 0.0, 0, True))
        eff_bw = mapped(lambda: aten._efficient_attention_backward(
            grad_out, q, k, v, None, e[0], None, None, L, S, e[1], 0.0, e[2], e[3], 0, False))
    except (AttributeError, NotImplementedError, RuntimeError) as error:
        pytest.skip(f"low-level attention kernels not callable on meta in torch {torch.__version__}: {error}")
    assert flash.get_total_flops() == eff.get_total_flops() == FORWARD
    assert flash_bw.get_total_flops() == eff_bw.get_total_flops() == 2 * FORWARD
    # packed sequences (nested tensors): (total, H, E) and cumulative offsets; Σ L_i·S_i pairs per head
    lq, lk = (2, 3), (4, 1)
    packed = [torch.empty(sum(n), H, d, device="meta") for n, d in ((lq, E), (lk, E), (lk, EV))]
    offsets = [torch.tensor([0, *torch.tensor(n).cumsum(0).tolist()]) for n in (lq, lk)]
    pairs = H * sum(a * b for a, b in zip(lq, lk, strict=True))
    assert flash_forward_op(*packed, *offsets, 3, 4) == 2 * pairs * (E + EV)
    assert cudnn_forward_op(*packed, None, *offsets, 3, 4) == 2 * pairs * (E + EV)  # no meta kernel: by shape
    assert cudnn_forward_op(*qkv("meta"), None, None, None, L, S, True) == FORWARD  # dense: (B, H, L, E)
    grad = torch.empty(B, H, L, EV, device="meta")
    assert cudnn_backward_op(grad, *qkv("meta"), *[None] * 5, None, None, L, S, 0.0, False) == 2 * FORWARD
    unknown = [torch.empty(3, dtype=torch.int32, device="meta")] * 2  # values unknown: every sequence at its max
    assert flash_forward_op(*packed, *unknown, 3, 4) == 2 * H * 2 * 3 * 4 * (E + EV)


def test_every_variant_of_this_torch_is_registered():
    present = [n for n in FORMULA_BY_NAME if hasattr(aten, n)]
    assert {"_scaled_dot_product_flash_attention_for_cpu", "_native_multi_head_attention"} <= set(present)
    assert all(formulas.OP_FORMULAS[getattr(aten, n)] is FORMULA_BY_NAME[n] for n in present)
    names = {n.split("::")[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names() if n.startswith("aten::")}
    unknown = {n for n in names if "attention" in n} - set(FORMULA_BY_NAME)
    # composites the counter decomposes, and kernels reached only from inside a counted one
    assert unknown <= {"scaled_dot_product_attention", "_scaled_dot_product_attention_math",
                       "_chunk_grad_outputs_efficient_attention"}, unknown


# -- the guard ----------------------------------------------------------------------------------------------------


@pytest.fixture
def no_attention_formulas(monkeypatch):
    """The counter as a torch without attention formulas would be: every attention kernel counts 0."""
    for op in ATTENTION_FORMULAS:
        monkeypatch.delitem(formulas.OP_FORMULAS, op)
    monkeypatch.setattr("torch.utils.flop_counter.flop_registry", {
        op: f for op, f in torch.utils.flop_counter.flop_registry.items() if op not in ATTENTION_FORMULAS})


@pytest.mark.parametrize("inference", [False, True])
def test_guard_lists_attention_whose_products_were_not_counted(no_attention_formulas, inference):
    e, heads = 16, 4
    block = nn.TransformerEncoderLayer(e, heads, 24, dropout=0.0, batch_first=True)
    attn, x = SDPA(), torch.randn(2, 5, e)
    q, k, v = qkv()
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), torch.inference_mode(inference):
        c = count_flops(lambda: (block(x), attn(q, k, v)), {"block": block.train(not inference), "attn": attn})
    assert c.total == 2 * 2 * 5 * e * 4 * e + 2 * 2 * 2 * 5 * e * 24  # the projections and MLP were counted
    assert c.unaccounted == ["block.self_attn", "attn"]
    assert "0 FLOPs counted, 3,200 expected" in c.attention["block.self_attn"]


class ElementwiseAttention(nn.Module):
    """Attention with its products as broadcast multiplies and sums: elementwise, so the counter sees 0 there."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(E, 3 * E)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        a = (q.unsqueeze(-2) * k.unsqueeze(-3)).sum(-1).softmax(-1)
        return (a.unsqueeze(-1) * v.unsqueeze(-3)).sum(-2)


def test_guard_lists_declared_attention_modules_with_no_attention_products(monkeypatch):
    m, x = ElementwiseAttention(), torch.randn(2, L, E)
    assert count_flops(lambda: m(x), {"m": m}).unaccounted == []  # its projection counted: not an attention type
    monkeypatch.setattr(formulas, "_ATTENTION", dict(formulas._ATTENTION))  # undone after the test
    formulas.declare_attention(ElementwiseAttention, "test")
    c = count_flops(lambda: m(x), {"m": m})
    assert c.unaccounted == ["m"] and "no attention products" in c.attention["m"]
    hf_like = type("FakeSelfAttention", (ElementwiseAttention,), {"__module__": "transformers.models.fake"})()
    assert count_flops(lambda: hf_like(x), {"m": hf_like}).unaccounted == ["m"]  # Hugging Face *Attention
