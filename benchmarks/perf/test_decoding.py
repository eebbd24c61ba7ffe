"""Decoding: ``prefix-gpt2-paper``'s batched greedy decoding with a KV cache (``PrefixGPT2.predict``, what
benchkit's ``predict`` loop calls) against the reference's batch-1 loop that recomputes the whole sequence at every
step (``PrefixGPT2.predict_reference``, InvPatch's ``decode``), on the same random prefixes, same outputs asserted.

Random weights emit EOS wherever it happens to win the argmax, so both paths decode the full length
(``benchkit.profiling.phases.full_length``), as a trained model does on a sample of that length: 16 actions are
18 tokens (BOS, 16 actions, EOS), 32 actions 34.
"""

from __future__ import annotations

import pytest
import torch
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS

from benchkit.profiling.phases import full_length
from benchkit.registry.interfaces import PredictorSpec
from benchkit.sequence.vocabulary import Vocabulary

PRESET = "prefix-gpt2-paper"


@pytest.mark.parametrize("actions", [16, 32])
def test_batched_kv_cache_vs_reference_loop(actions, benchmark, registry, record, measure, request):
    batch = request.config.getoption("--perf-batch")
    n_ref = min(batch, request.config.getoption("--perf-reference-samples"))
    vocabulary = Vocabulary(MUGEN_ACTIONS, delimiter=True)
    spec = PredictorSpec(prefix_dim=768, prefix_tokens=1, vocabulary=vocabulary, max_len=actions + 2)
    torch.manual_seed(0)
    model = registry.build("predictor", registry.resolve("predictor", PRESET, {}), spec).eval()
    prefix = torch.randn(batch, 1, 768, generator=torch.Generator().manual_seed(1))

    with full_length(model):
        batched, batched_s = measure(lambda: model.predict(prefix), rounds=3, benchmark=benchmark, warmup=1)
        reference, reference_s = measure(lambda: model.predict_reference(prefix[:n_ref]))

    tokens = actions + 2
    assert all(len(seq) == tokens for seq in batched), "every sample decodes the full length"
    assert batched[:n_ref] == reference, "the batched KV-cache path gives the reference loop's tokens"
    batched_rate, reference_rate = batch / batched_s, n_ref / reference_s
    speedup = batched_rate / reference_rate
    record(
        benchmark, f"decoding {actions} actions",
        predictor=PRESET, tokens=tokens, batch=batch, reference_samples=n_ref,
        batched_s=batched_s, reference_s=reference_s,
        batched_seq_per_s=batched_rate, reference_seq_per_s=reference_rate,
        batched_tokens_per_s=batched_rate * tokens, reference_tokens_per_s=reference_rate * tokens,
        speedup=speedup, threads=torch.get_num_threads(),
    )
    target = request.config.getoption("--perf-min-speedup")
    assert speedup >= target, f"batched decoding is {speedup:.1f}x the reference loop; the target is {target}x"
