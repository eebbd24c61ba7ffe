from __future__ import annotations

import pytest
import torch
from benchkit_datasets.mugen_rules import MUGEN_ACTIONS
from benchkit_predictors.prefix_gpt2 import PrefixGPT2

from benchkit.interfaces import PredictorSpec
from benchkit.vocabulary import BOS, PAD, PAD_CLASS, Vocabulary

MUGEN = Vocabulary(MUGEN_ACTIONS, delimiter=True)
BIMACS = Vocabulary(tuple(f"a{i}" for i in range(14)))


def test_vocabulary_layout_matches_reference():
    assert (MUGEN.eos, MUGEN.size) == (10, 11)  # PAD 0, BOS 1, actions 2-8, delimiter 9, EOS 10
    assert (BIMACS.eos, BIMACS.size) == (16, 17)  # no delimiter
    assert MUGEN.encode([0, 6], 6) == [BOS, 2, 8, 10, PAD, PAD]
    assert MUGEN.decode([BOS, 2, 8, 10, 3]) == [0, 6]
    assert MUGEN.decode([3, 0, 9, 10]) == [1, PAD_CLASS, -10]  # specials stay as (negative) classes
    with pytest.raises(ValueError):
        MUGEN.encode([0] * 5, 6)


def _decoder(k=1, dim=16, seed=0, dropout=0.1):
    torch.manual_seed(seed)
    spec = PredictorSpec(prefix_dim=dim, prefix_tokens=k, vocabulary=MUGEN, max_len=17)
    return PrefixGPT2(spec, n_layer=2, n_embd=16, n_head=2, n_positions=64, dropout=dropout).eval()


@pytest.mark.parametrize("k", [1, 4])
def test_kv_cache_batched_greedy_equals_reference_loop(k):
    model = _decoder(k=k)
    # Train briefly so that EOS is emitted at different steps for different samples.
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    prefix = torch.randn(12, k, 16, generator=g)
    lengths = torch.randint(3, 15, (12,), generator=g)
    tokens = torch.tensor([MUGEN.encode(torch.randint(0, 7, (n,), generator=g).tolist(), 17) for n in lengths])
    for _ in range(60):
        loss = model.loss(prefix, tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test = torch.cat([prefix, torch.randn(20, k, 16, generator=g)])
    batched = model.predict(test)
    assert batched == model.predict_reference(test)
    ends = {len(seq) for seq in batched}
    assert len(ends) > 1, "the check needs samples that stop at different steps"


def test_loss_ignores_padding_and_targets_start_with_bos():
    model = _decoder(dropout=0.0)
    prefix = torch.randn(2, 1, 16)
    tokens = torch.tensor([MUGEN.encode([1, 2], 6), MUGEN.encode([3], 6)])
    padded_more = torch.cat([tokens, torch.zeros(2, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model.loss(prefix, tokens), model.loss(prefix, padded_more))


def test_projection_only_when_widths_differ():
    assert isinstance(_decoder(dim=16).project, torch.nn.Identity)
    assert isinstance(_decoder(dim=8).project, torch.nn.Linear)


def test_paper_decoder_parameter_count():
    spec = PredictorSpec(prefix_dim=768, prefix_tokens=1, vocabulary=MUGEN, max_len=17)
    model = PrefixGPT2(spec)  # spec invpatch.md §2 defaults
    d, layers, vocab, positions = 768, 4, 11, 1024
    analytic = vocab * d + positions * d + layers * (12 * d * d + 13 * d) + 2 * d  # tied head: no extra weights
    assert analytic == 29_147_904  # the spec's ≈ 29.15M
    assert sum(p.numel() for p in model.parameters()) == analytic
