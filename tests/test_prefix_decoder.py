from __future__ import annotations

import warnings

import pytest
import torch
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS
from benchkit_predictors.prefix_gpt2 import PrefixGPT2

from benchkit.registry.interfaces import PredictorSpec
from benchkit.sequence.vocabulary import BOS, PAD, PAD_CLASS, Vocabulary, until_eos

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
    # the fixed-length tensor form (K candidates decode together through it) writes the same tokens to the first EOS
    with torch.no_grad():
        fixed = model.greedy_tokens(test)
    assert fixed.shape == (len(test), model.max_decode_tokens)
    assert [until_eos(row, model.eos) for row in fixed.tolist()] == batched


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


def test_cached_decoding_uses_the_current_cache_api_and_warns_nothing():
    """transformers renamed ``past_key_values`` to ``cache`` (the old name warns on every step); the KV-cache
    loop must pass only names the installed ``forward`` declares, emit no warning and still match the reference."""
    import inspect
    import logging

    model = _decoder(k=2)
    declared = inspect.signature(type(model.gpt).forward).parameters
    passed: set[str] = set()
    forward = model.gpt.forward

    def spy(*args, **kwargs):
        passed.update(kwargs)
        return forward(*args, **kwargs)

    model.gpt.forward = spy
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    hf_logger = logging.getLogger("transformers")
    getattr(logging.Logger.warning_once, "cache_clear", lambda: None)()  # transformers' once-only warnings
    hf_logger.addHandler(handler)
    prefix = torch.randn(6, 2, 16, generator=torch.Generator().manual_seed(0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            batched = model.predict(prefix)
    finally:
        hf_logger.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]
    assert passed <= set(declared), passed - set(declared)
    assert batched == model.predict_reference(prefix)


def _overlong_decoder(max_decode_tokens=None, seed=0):
    """A decoder whose targets hold 3 actions (max_len 5) but that was trained on 8-10 actions, so it runs past the
    targets' length and stops at EOS at different steps: the case where the decode length changes the output."""
    torch.manual_seed(seed)
    spec = PredictorSpec(prefix_dim=16, prefix_tokens=1, vocabulary=MUGEN, max_len=5)
    model = PrefixGPT2(spec, n_layer=2, n_embd=16, n_head=2, n_positions=64, max_decode_tokens=max_decode_tokens)
    g = torch.Generator().manual_seed(1)
    prefix = torch.randn(12, 1, 16, generator=g)
    lengths = torch.randint(8, 11, (12,), generator=g)
    tokens = torch.tensor([MUGEN.encode(torch.randint(0, 7, (n,), generator=g).tolist(), 12) for n in lengths])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model.loss(prefix, tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), torch.cat([prefix, torch.randn(20, 1, 16, generator=g)])


def test_max_decode_tokens_lengthens_decoding_and_cached_equals_reference_loop():
    """``max_decode_tokens`` (the reference's seq_len) decodes past the targets' ``max_len``: longer outputs, the
    same tokens as the reference loop at that length, and the default output is their first ``max_len`` tokens."""
    short, prefix = _overlong_decoder()
    long, _ = _overlong_decoder(max_decode_tokens=14)
    assert long.state_dict().keys() == short.state_dict().keys()
    for a, b in zip(long.state_dict().values(), short.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)  # the option changes decoding only, not the model
    default, extended = short.predict(prefix), long.predict(prefix)
    assert max(map(len, default)) == 5 and max(map(len, extended)) > 5
    assert len({len(s) for s in extended}) > 1, "the check needs samples that stop at different steps"
    assert extended == long.predict_reference(prefix)
    assert default == long.predict_reference(prefix, max_tokens=5) == long.predict(prefix, max_tokens=5)
    assert all(e[: len(d)] == d for d, e in zip(default, extended, strict=True))


def test_max_decode_tokens_changes_precision_and_accuracy():
    """Where the reference pads the shorter of hypothesis and reference, actions decoded past the targets' length
    count as errors: the decode length moves accuracy and precision (and BLEU, through the brevity penalty)."""
    from benchkit_metrics.accuracy import token_accuracy
    from benchkit_metrics.bleu import sentence_bleu4
    from benchkit_metrics.precision import weighted_precision

    short, prefix = _overlong_decoder()
    long, _ = _overlong_decoder(max_decode_tokens=14)
    g = torch.Generator().manual_seed(2)
    references = [torch.randint(0, 7, (3,), generator=g).tolist() for _ in range(len(prefix))]
    default = [MUGEN.decode(t) for t in short.predict(prefix)]
    extended = [MUGEN.decode(t) for t in long.predict(prefix)]
    assert default != extended
    assert token_accuracy(extended, references) != token_accuracy(default, references)
    assert weighted_precision(extended, references) != weighted_precision(default, references)
    names = [[MUGEN.class_name(c) for c in h] for h in (*default, *extended, *references)]
    n = len(prefix)
    hyp_default, hyp_extended, refs = names[:n], names[n : 2 * n], names[2 * n :]
    assert sentence_bleu4(hyp_extended, refs) != sentence_bleu4(hyp_default, refs)


def test_max_decode_tokens_is_checked():
    spec = PredictorSpec(prefix_dim=16, prefix_tokens=2, vocabulary=MUGEN, max_len=17)
    with pytest.raises(ValueError, match="max_decode_tokens"):
        PrefixGPT2(spec, n_layer=1, n_embd=16, n_head=2, n_positions=64, max_decode_tokens=0)
    with pytest.raises(ValueError, match="2 prefix \\+ 63 tokens exceed n_positions=64"):
        PrefixGPT2(spec, n_layer=1, n_embd=16, n_head=2, n_positions=64, max_decode_tokens=63)
    assert PrefixGPT2(spec, n_layer=1, n_embd=16, n_head=2, n_positions=64).max_decode_tokens == 17
