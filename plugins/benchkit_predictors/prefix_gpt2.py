"""``prefix-gpt2``: a GPT-2 decoder trained from scratch that writes the action sequence after K prefix tokens.

Spec invpatch.md §2 (the reference follows DeCap): ``transformers.GPT2LMHeadModel`` with n_layer 4, n_embd 768,
n_head 4, n_positions 1024, ``gelu_new``, dropouts 0.1, layer-norm eps 1e-5, init range 0.02, tied embeddings
(≈29.15M parameters with the MUGEN vocabulary). Training input ``cat([prefix, wte(tokens)])``; logits
``[:, K-1:-1]`` against ``tokens`` (the last prefix position predicts BOS), cross-entropy ignoring PAD.

Decoding is greedy. The reference decodes one sample at a time and recomputes the whole sequence at every step
(:meth:`PrefixGPT2.predict_reference` reproduces it); :meth:`PrefixGPT2.predict` decodes a whole batch with a KV
cache and gives the same tokens.

How long decoding may run (``max_decode_tokens``, BOS and EOS included): by default ``spec.max_len``, the longest
target of the dataset plus BOS and EOS. The reference decodes up to its tokenizer's ``seq_len`` instead (InvPatch
``idm_*/exp_configurations.py``: 20 for MUGEN, whose targets have 15 actions, i.e. 17 tokens; 34 for BIMACS, the
same as ``max_len``). A sample that does not stop at EOS then produces more actions, which the accuracy and
precision padding rule and BLEU / METEOR count against it (docs/decisions.md, "recipe: reference vs benchkit").
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from benchkit.api import PAD, PredictorSpec, hookimpl, until_eos


class PrefixGPT2(nn.Module):
    """Prefix-conditioned GPT-2 decoder (DeCap / ClipCap style). A ``Linear`` maps the prefix to ``n_embd`` only
    when the aggregator's width differs (the paper's widths match, so it has none)."""

    def __init__(
        self,
        spec: PredictorSpec,
        n_layer: int = 4,
        n_embd: int = 768,
        n_head: int = 4,
        n_positions: int = 1024,
        dropout: float = 0.1,
        activation: str = "gelu_new",
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        max_decode_tokens: int | None = None,
    ) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        if max_decode_tokens is not None and max_decode_tokens < 1:
            raise ValueError(f"max_decode_tokens must be at least 1 (or null for the targets' max_len), got "
                             f"{max_decode_tokens}")
        self.max_decode_tokens = max_decode_tokens or spec.max_len
        longest = max(spec.max_len, self.max_decode_tokens)
        if spec.prefix_tokens + longest > n_positions:
            raise ValueError(f"{spec.prefix_tokens} prefix + {longest} tokens exceed n_positions={n_positions}")
        self.spec = spec
        self.eos = spec.vocabulary.eos
        config = GPT2Config(
            vocab_size=spec.vocabulary.size,
            n_positions=n_positions,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            activation_function=activation,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            initializer_range=initializer_range,
            bos_token_id=1,
            eos_token_id=self.eos,
            pad_token_id=PAD,
            tie_word_embeddings=True,
        )
        self.gpt = GPT2LMHeadModel(config)
        self.project = nn.Identity() if spec.prefix_dim == n_embd else nn.Linear(spec.prefix_dim, n_embd)

    def loss(self, prefix: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Next-token cross-entropy ignoring PAD, smoothed by ``label_smoothing`` (``train.label_smoothing``)."""
        prefix = self.project(prefix)
        k = prefix.shape[1]
        x = torch.cat([prefix, self.gpt.transformer.wte(tokens)], dim=1)
        logits = self.gpt(inputs_embeds=x, use_cache=False).logits[:, k - 1 : -1]
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1), ignore_index=PAD, label_smoothing=label_smoothing
        )

    @torch.inference_mode()
    def predict(self, prefix: torch.Tensor, max_tokens: int | None = None) -> list[list[int]]:
        """Batched greedy decoding with a KV cache: at most ``max_tokens`` (default ``max_decode_tokens``, itself
        ``spec.max_len`` unless set) per sample, stopping at EOS (kept); the same tokens as
        :meth:`predict_reference`."""
        max_tokens = max_tokens or self.max_decode_tokens
        x = self.project(prefix)
        name = _cache_argument(self.gpt)
        out = self.gpt(inputs_embeds=x, use_cache=True)
        steps = []
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for i in range(max_tokens):
            token = out.logits[:, -1].argmax(-1)
            steps.append(token)
            done |= token == self.eos
            if done.all() or i == max_tokens - 1:
                break
            cache = {name: getattr(out, name)}
            out = self.gpt(inputs_embeds=self.gpt.transformer.wte(token)[:, None], use_cache=True, **cache)
        return [until_eos(row, self.eos) for row in torch.stack(steps, 1).tolist()]

    def greedy_tokens(self, prefix: torch.Tensor, max_tokens: int | None = None) -> torch.Tensor:
        """Greedy ids ``(B, max_tokens)`` as one tensor, with the KV cache but no early stop (no branch on a value):
        the form ``torch.func.vmap`` runs over K candidates at once (benchkit/learn/together.py); each row cut after
        its first EOS is :meth:`predict`'s."""
        max_tokens = max_tokens or self.max_decode_tokens
        name = _cache_argument(self.gpt)
        out = self.gpt(inputs_embeds=self.project(prefix), use_cache=True)
        steps = [out.logits[:, -1].argmax(-1)]
        for _ in range(max_tokens - 1):
            out = self.gpt(inputs_embeds=self.gpt.transformer.wte(steps[-1])[:, None], use_cache=True,
                           **{name: getattr(out, name)})
            steps.append(out.logits[:, -1].argmax(-1))
        return torch.stack(steps, 1)

    @torch.inference_mode()
    def predict_reference(self, prefix: torch.Tensor, max_tokens: int | None = None) -> list[list[int]]:
        """The reference decoding loop (InvPatch ``decode``): one sample at a time, no cache, the whole sequence
        recomputed every step, at most ``max_tokens`` (default ``max_decode_tokens``) per sample. Kept for
        equivalence tests and the decoding benchmark."""
        max_tokens = max_tokens or self.max_decode_tokens
        results = []
        for sample in self.project(prefix):
            x, tokens = sample[None], []
            for _ in range(max_tokens):
                token = self.gpt(inputs_embeds=x, use_cache=False).logits[0, -1].argmax(-1)
                tokens.append(int(token))
                if tokens[-1] == self.eos:
                    break
                x = torch.cat([x, self.gpt.transformer.wte(token)[None, None]], dim=1)
            results.append(tokens)
        return results


def _cache_argument(model: nn.Module) -> str:
    """The name under which the installed transformers' GPT-2 takes and returns its KV cache: ``cache`` in current
    releases, where ``past_key_values`` is a deprecated alias that warns on every call, and ``past_key_values``
    before (transformers >= 4.44)."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


@hookimpl
def benchkit_register(registry):
    registry.predictor("prefix-gpt2", PrefixGPT2)
