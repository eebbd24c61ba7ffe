"""What ``torch.utils.flop_counter.FlopCounterMode`` misses, and what is free by convention (docs/profiling.md).

The counter has formulas for matrix products, convolutions and attention kernels only. benchkit adds:

- **module formulas**, which replace whatever the counter saw inside a module: ``nn.LSTM`` runs as one oneDNN or
  cuDNN kernel the counter does not know (it counts 0), ``nn.GRU`` / ``nn.RNN`` decompose into counted products on
  CPU but not on CUDA. A recurrent net does one multiply-add per weight (not bias) per step per sequence, so its
  forward is ``2 · steps · Σ numel(weight_*)`` FLOPs: for one LSTM layer and direction with gates of
  ``4·(i·h + h·h + 2h)`` parameters that is ``2 · N · T · 4h(i + h)``.
- **op formulas** for products the counter leaves out: ``mv`` / ``addmv`` (a matrix times a vector, e.g.
  ``tokens @ u`` in attention pooling) and ``dot`` / ``vdot``; and every attention kernel PyTorch can dispatch,
  counted alike whichever it picks (:mod:`benchkit.profiling.attention`).
- **free declarations**: modules whose parameters only enter elementwise operations or lookups (norms,
  embeddings, learnable exponents). They contribute 0 FLOPs under the counter's convention (products only), and
  the guard in :func:`benchkit.profiling.flops.unaccounted` accepts them; any other module with parameters that
  contributes 0 FLOPs is reported, so a new layer the counter cannot see never silently counts as free.
- **attention modules** (:func:`declare_attention`; ``nn.MultiheadAttention``, Hugging Face ``*Attention``
  classes, the first-party attention blocks): the guard also requires that their ``Q·Kᵀ`` and ``A·V`` products
  were counted, since their projections alone would hide a missing attention formula.

Plugins register their own with :func:`register_formula`, :func:`declare_free` and :func:`declare_attention` (a
class, or its dotted ``module.QualName`` when importing it would be costly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from benchkit.profiling.attention import ATTENTION_FORMULAS

ModuleFormula = Callable[[nn.Module, tuple, Any], int]
"""``(module, positional inputs, output) -> forward FLOPs`` of one call."""

_FORMULAS: dict[type | str, tuple[ModuleFormula, str]] = {}
_FREE: dict[type | str, str] = {}
_ATTENTION: dict[type | str, str] = {}


def register_formula(module_type: type | str, formula: ModuleFormula, note: str) -> None:
    """Count ``module_type`` (and its subclasses) with ``formula`` instead of the counter's view of its insides."""
    _FORMULAS[module_type] = (formula, note)


def declare_free(module_type: type | str, reason: str) -> None:
    """Accept 0 FLOPs from the parameters ``module_type`` holds itself (elementwise use, concatenation, lookup);
    its child modules are still checked one by one. ``reason`` says why."""
    _FREE[module_type] = reason


def declare_attention(module_type: type | str, note: str = "attention") -> None:
    """Mark ``module_type`` (and its subclasses) as computing attention: whenever it runs, the guard requires
    attention products (an attention kernel's formula, or batched ``bmm`` / ``baddbmm`` products) counted inside
    it."""
    _ATTENTION[module_type] = note


def _lookup(table: dict[type | str, Any], module: nn.Module) -> Any:
    for cls in type(module).__mro__:
        for key in (cls, f"{cls.__module__}.{cls.__qualname__}"):
            if key in table:
                return table[key]
    return None


def formula_for(module: nn.Module) -> tuple[ModuleFormula, str] | None:
    return _lookup(_FORMULAS, module)


def free_reason(module: nn.Module) -> str | None:
    return _lookup(_FREE, module)


def is_attention_module(module: nn.Module) -> bool:
    """Declared with :func:`declare_attention`, or a Hugging Face (``transformers``) class named ``*Attention``."""
    cls = type(module)
    return _lookup(_ATTENTION, module) is not None or (
        cls.__module__.startswith("transformers.") and cls.__name__.endswith("Attention")
    )


def rnn_steps(x: torch.Tensor | PackedSequence, batch_first: bool) -> int:
    """Sequence steps summed over the batch: ``N · T``, ``T`` when unbatched, ``Σ lengths`` when packed."""
    if isinstance(x, PackedSequence):
        return int(x.data.shape[0])
    if x.dim() == 2:
        return int(x.shape[0])
    return int(x.shape[0] * x.shape[1])


def rnn_flops(module: nn.RNNBase, inputs: tuple, output: Any) -> int:
    """``2 · steps · Σ numel(weight_*)``: one multiply-add per weight per step per sequence, for every layer and
    direction (``weight_hr`` of a projected LSTM included); biases and gate nonlinearities are elementwise."""
    weights = sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight_"))
    return 2 * rnn_steps(inputs[0], module.batch_first) * weights


def _mv_flops(a_shape, b_shape, *args, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1]


def _addmv_flops(self_shape, a_shape, b_shape, *args, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1]


def _dot_flops(a_shape, b_shape, *args, **kwargs) -> int:
    return 2 * a_shape[0]


OP_FORMULAS: dict[Any, Callable[..., int]] = {
    torch.ops.aten.mv: _mv_flops,
    torch.ops.aten.addmv: _addmv_flops,
    torch.ops.aten.dot: _dot_flops,
    torch.ops.aten.vdot: _dot_flops,
    **ATTENTION_FORMULAS,
}
"""Extra per-op formulas passed to ``FlopCounterMode(custom_mapping=...)`` (they replace the counter's own for the
same op: attention is counted one way, see :mod:`benchkit.profiling.attention`)."""

register_formula(nn.RNNBase, rnn_flops, "2 · steps · Σ weights (LSTM, GRU, RNN; one kernel the counter misses)")

for _norm in (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LocalResponseNorm):
    declare_free(_norm, "normalisation: elementwise scale and shift")
declare_free(nn.modules.batchnorm._NormBase, "normalisation: elementwise scale and shift")
declare_free(nn.Embedding, "lookup (gather), no arithmetic")
declare_free(nn.PReLU, "elementwise activation")
declare_attention(nn.MultiheadAttention)
for _name in (
    "benchkit_aggregators.invpatch.Attention",
    "benchkit_predictors._joint_attention.JointAttention",
    "benchkit_predictors._attentive_classifier.SelfAttentionBlock",
    "benchkit_predictors._attentive_classifier.CrossAttentionBlock",
):
    declare_attention(_name)
declare_free("benchkit_aggregators.gem.GeM", "elementwise power mean: clamp, pow, mean")
declare_free(
    "benchkit_predictors.transformer_baselines.TransformerDecoderPredictor",
    "learned query tokens are inputs, like embeddings (its layers are counted children)",
)
declare_free(
    "benchkit_predictors._attentive_classifier.AttentiveClassifier",
    "learned query tokens are inputs, like embeddings (its blocks and head are counted children)",
)
declare_free("benchkit_backbones.random_vit.RandomViT", "CLS token concatenated (its layers are counted children)")
declare_free("transformers.models.dinov2.modeling_dinov2.Dinov2LayerScale", "elementwise scale")
declare_free(
    "transformers.models.dinov2.modeling_dinov2.Dinov2Embeddings",
    "CLS and mask tokens concatenated, positions added (the patch projection is a counted child)",
)
