"""FLOPs of a call, per module and per op, with ``torch.utils.flop_counter.FlopCounterMode`` (docs/profiling.md).

Convention: real FLOPs of matrix products, convolutions and attention (a multiply-add is 2 FLOPs; MACs are FLOPs
/ 2), elementwise work left out, as fvcore, timm and the counter itself do. On top of the counter:

- the formulas of :mod:`benchkit.profiling.formulas` (recurrent nets, matrix-vector products) and of
  :mod:`benchkit.profiling.attention` (every attention kernel, counted as the math path counts it);
- PyTorch's fused ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` inference fast path is switched off
  while counting, for attribution: that one kernel (counted by formula all the same) would put all of a layer's
  FLOPs on the layer itself, where the unfused path names ``self_attn``, ``linear1``, ...; both count the same;
- a watch on every attention op dispatched, for the guard: the counter must have counted its products;
- attribution to modules: the call runs inside a root module holding the named components, so every module is
  named by its path (``aggregator.merge.attn``) and methods that are not ``forward`` (``predictor.predict``) are
  attributed through the submodules they call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook
from torch.utils import module_tracker
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from benchkit.profiling.attention import ATTENTION_FORMULAS, expected_flops, is_attention_op
from benchkit.profiling.formulas import OP_FORMULAS, formula_for, free_reason, is_attention_module
from benchkit.profiling.params import modules_of


class _Root(nn.Module):
    """Holds the components as children, so the counter names their modules by path; runs the call. A component
    that is not a module (a backbone wrapper) is represented by the module(s) it holds."""

    def __init__(self, components: Mapping[str, Any]) -> None:
        super().__init__()
        for name, component in components.items():
            modules = modules_of(component)
            for i, module in enumerate(modules):
                self.add_module(name if len(modules) == 1 else f"{name}_{i}", module)

    def forward(self, fn: Callable[[], Any]) -> Any:
        return fn()


ROOT = _Root.__name__  # the counter names the outermost module by its class name, its submodules by path


@dataclass
class FlopCount:
    """One counted call. ``modules``: inclusive FLOPs per module path ("" is everything; a module whose
    ``forward`` never ran, e.g. a predictor used through ``predict``, sums its children); ``own``: FLOPs of a
    module that ran outside its child modules; ``called``: modules whose ``forward`` ran; ``formulas``: FLOPs that
    came from a module formula, per path; ``by_op``: totals per counted op (``formula:<Class>`` for formulas);
    ``attention``: per module that computed attention (inclusive), whether its products were counted, and if not
    why; ``unaccounted``: see :func:`unaccounted`."""

    total: int
    by_op: dict[str, int]
    modules: dict[str, int]
    own: dict[str, int]
    called: set[str]
    formulas: dict[str, int] = field(default_factory=dict)
    attention: dict[str, str] = field(default_factory=dict)
    unaccounted: list[str] = field(default_factory=list)

    def component(self, name: str) -> int:
        return self.modules.get(name, 0)


def _names(root: nn.Module) -> dict[nn.Module, str]:
    """The paths ``ModuleTracker`` gives the modules below ``root`` (its own naming rule, applied up front)."""
    names: dict[nn.Module, str] = {root: ROOT}
    seen: set[int] = set()

    def visit(module: nn.Module) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        for child_name, child in module.named_children():
            names[child] = f"{names[module]}.{child_name}"
            visit(child)

    visit(root)
    return names


def _relative(name: str) -> str:
    return "" if name == ROOT else name.removeprefix(ROOT + ".")


@contextlib.contextmanager
def _no_fused_attention() -> Iterator[None]:
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


class _NoHook:
    def remove(self) -> None:
        pass


@contextlib.contextmanager
def _tracker_safe_in_inference_mode() -> Iterator[None]:
    """Work around a PyTorch bug: under ``inference_mode`` the counter's module tracker crashes when a parameter is
    passed to a module as an input (V-JEPA's attentive classifier passes its query), because it registers a
    backward hook that needs a ``grad_fn`` no tensor has there. No backward can follow in inference mode, so the
    hook is skipped then."""
    original = module_tracker.register_multi_grad_hook

    def register(tensors, fn, *args, **kwargs):
        if torch.is_inference_mode_enabled():
            return _NoHook()
        return original(tensors, fn, *args, **kwargs)

    module_tracker.register_multi_grad_hook = register
    try:
        yield
    finally:
        module_tracker.register_multi_grad_hook = original


_BATCHED_PRODUCTS = (torch.ops.aten.bmm, torch.ops.aten.baddbmm)  # the math path's Q·Kᵀ and A·V
COUNTED = "counted"


class _AttentionWatch(TorchDispatchMode):
    """Sees each op before the counter does (it is entered inside it). For an attention op (see
    :func:`benchkit.profiling.attention.is_attention_op`) it compares what the counter counted during the call
    with what the formula says it must have: at least the ``Q·Kᵀ`` and ``A·V`` products. The verdict is recorded
    for every module the call ran in, the innermost one named in a miss."""

    supports_higher_order_operators = True

    def __init__(self, counter: FlopCounterMode) -> None:
        super().__init__()
        self.counter = counter
        self.verdicts: dict[str, str] = {}  # counter's module name -> COUNTED or why not

    def _counted(self) -> int:
        return sum(self.counter.flop_counts["Global"].values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = getattr(func, "_overloadpacket", None)
        if packet is None or not is_attention_op(packet):
            return func(*args, **kwargs)
        before = self._counted()
        out = func(*args, **kwargs)
        counted = self._counted() - before
        if not any(isinstance(t, torch.Tensor) for t in (out if isinstance(out, tuple | list) else (out,))):
            return out  # a query about attention (a flag, a choice), not a computation
        expected = expected_flops(packet, args, kwargs)
        tracker = getattr(self.counter, "mod_tracker", None)
        parents = {p for p in getattr(tracker, "parents", ()) if p != "Global"} or {ROOT}
        if counted >= (expected if expected is not None else 1):
            for name in parents:
                self.verdicts.setdefault(name, COUNTED)
        else:
            inner = max(sorted(parents), key=lambda p: p.count("."))
            need = f"{expected:,}" if expected is not None else "some"
            self.verdicts[inner] = f"{packet}: {counted:,} FLOPs counted, {need} expected (attention products)"
        return out


def count_flops(fn: Callable[[], Any], components: Mapping[str, Any], backward: bool = False) -> FlopCount:
    """Count ``fn()`` (which may call ``.backward()``; say so with ``backward`` so module formulas count their
    backward too, as 2x their forward: gradients with respect to inputs and to weights)."""
    root = _Root(components)
    names = _names(root)
    called: set[str] = set()
    formula_calls: dict[str, int] = {}

    def on_forward(module: nn.Module, inputs: tuple, output: Any) -> None:
        name = names.get(module)
        if name is None:
            return
        called.add(_relative(name))
        found = formula_for(module)
        if found is not None:
            flops = found[0](module, inputs, output)
            outputs = output if isinstance(output, tuple) else (output,)
            grad = backward and any(isinstance(o, torch.Tensor) and o.requires_grad for o in outputs)
            formula_calls[name] = formula_calls.get(name, 0) + flops * (3 if grad else 1)

    handle = register_module_forward_hook(on_forward)
    try:
        counter = FlopCounterMode(display=False, custom_mapping=OP_FORMULAS)
        watch = _AttentionWatch(counter)
        with _no_fused_attention(), _tracker_safe_in_inference_mode(), counter, watch:
            root(fn)
    finally:
        handle.remove()
    counts = counter.get_flop_counts()
    by_op = {str(op): n for op, n in counts.get("Global", {}).items()}
    inclusive = {name: sum(counts.get(name, {}).values()) for name in names.values()}
    total = sum(by_op.values())
    for name, flops in formula_calls.items():  # the formula replaces whatever the counter saw inside the module
        seen = counts.get(name, {})
        for op, n in seen.items():
            by_op[str(op)] -= n
        delta = flops - sum(seen.values())
        key = f"formula:{type(_module_at(names, name)).__name__}"
        by_op[key] = by_op.get(key, 0) + flops
        total += delta
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            inclusive[".".join(parts[:i])] += delta
    tree = {_relative(names[m]): [_relative(names[c]) for c in m.children()] for m in names}
    modules = {_relative(n): v for n, v in inclusive.items()}
    modules[""] = total

    def fill(path: str) -> int:  # modules that never ran: the sum of their children
        sums = sum(fill(c) for c in tree.get(path, ()))
        if path and path not in called:
            modules[path] = sums
        return modules[path]

    fill("")
    attention = {_relative(n): v for n, v in watch.verdicts.items()}
    attention_ops = {*_BATCHED_PRODUCTS, *ATTENTION_FORMULAS}
    for name, ops in counts.items():
        if name != "Global" and any(n > 0 for op, n in ops.items() if op in attention_ops):
            attention.setdefault(_relative(name), COUNTED)
    own = {p: modules[p] - sum(modules[c] for c in tree.get(p, ())) if p in called or not p else 0 for p in modules}
    result = FlopCount(
        total=total,
        by_op={k: v for k, v in by_op.items() if v},
        modules=modules,
        own=own,
        called=called,
        formulas={_relative(n): v for n, v in formula_calls.items()},
        attention=attention,
    )
    result.unaccounted = unaccounted(result, root, names)
    return result


def _module_at(names: dict[nn.Module, str], name: str) -> nn.Module:
    return next(m for m, n in names.items() if n == name)


def unaccounted(count: FlopCount, root: nn.Module, names: dict[nn.Module, str]) -> list[str]:
    """Modules with parameters of their own that contributed 0 FLOPs and are not declared free, and modules
    whose attention products were not counted.

    A module whose ``forward`` ran must have FLOPs of its own (outside its children) or a formula. A module that
    never ran (``nn.MultiheadAttention.out_proj`` is used through its weight, not called) is covered by its
    nearest ancestor that ran (the whole call when none did), which must have FLOPs of its own.

    Attention is checked apart, since counted projections would hide a missing ``Q·Kᵀ`` / ``A·V``: every
    attention op dispatched must have been counted at least as its formula says (the innermost module it ran in
    is listed otherwise; ``count.attention`` says why), and every attention module that ran
    (:func:`benchkit.profiling.formulas.is_attention_module`) must have attention products counted inside it:
    a counted attention op, or the math path's ``bmm`` / ``baddbmm``.
    """
    parents = {names[c]: names[m] for m in names for c in m.children() if c in names}
    missing = []
    for module, name in names.items():
        if module is root or not any(True for _ in module.parameters(recurse=False)) or free_reason(module):
            continue
        path = _relative(name)
        if path in count.called:
            if count.own.get(path, 0) <= 0:
                missing.append(path)
            continue
        ancestor = parents.get(name, ROOT)
        while ancestor != ROOT and _relative(ancestor) not in count.called:
            ancestor = parents.get(ancestor, ROOT)
        if count.own.get(_relative(ancestor), 0) <= 0:
            missing.append(path)
    for module, name in names.items():
        path = _relative(name)
        if path in count.called and is_attention_module(module) and path not in count.attention:
            count.attention[path] = f"{type(module).__name__}: no attention products counted inside it"
    missing += [p or "(outside the components' modules)" for p, verdict in count.attention.items()
                if verdict != COUNTED and p not in missing]
    return missing
