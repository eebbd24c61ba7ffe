"""The vanilla-transformer baselines (specs/vedit.md §4): Ego4D-style encoder and SCHEMA-style decoder."""

from __future__ import annotations

import math

import pytest
import torch
from benchkit_predictors.transformer_baselines import (
    TransformerDecoderPredictor,
    TransformerEncoderPredictor,
    sinusoidal_positions,
)

from benchkit.registry.interfaces import PredictorSpec
from benchkit.sequence.vocabulary import Vocabulary

VOCAB = Vocabulary(tuple(f"a{i}" for i in range(6)))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _spec(prefix_tokens=3, dim=16, targets=1, vocabulary=VOCAB):
    return PredictorSpec(prefix_dim=dim, prefix_tokens=prefix_tokens, vocabulary=vocabulary, max_len=targets + 2)


def _count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_sinusoidal_positions():
    pe = sinusoidal_positions(5, 8)
    for pos, i in ((0, 0), (3, 1), (4, 3)):
        angle = pos / 10000 ** (2 * i / 8)
        assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_ego4d_encoder_at_paper_size():
    """d 2048, 8 heads, 6 post-LN layers, FF 2048, ReLU; one head per slot: Ego4D's Z = 20 (verb, noun) pairs are
    2Z = 40 interleaved slots over the joint verb + noun classes (117 + 521)."""
    vocabulary = Vocabulary(tuple(f"c{i}" for i in range(117 + 521)))
    with torch.device("meta"):
        model = TransformerEncoderPredictor(_spec(prefix_tokens=4, dim=2048, targets=40, vocabulary=vocabulary))
    d, ff, a = 2048, 2048, 638
    layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 4 * d
    assert 6 * layer == 151_117_824
    assert _count(model) == 6 * layer + 40 * (d * a + a)
    first = model.encoder.layers[0]
    assert not first.norm_first and first.activation_relu_or_gelu == 1 and len(model.heads) == 40
    assert isinstance(model.project, torch.nn.Identity)
    assert (model.dropout.p, model.head_dropout.p) == (0.2, 0.5)


def test_encoder_reads_the_last_token():
    torch.manual_seed(0)
    model = TransformerEncoderPredictor(_spec(), width=16, heads=2, layers=1, ff=32).eval()
    prefix = torch.randn(2, 3, 16)
    base = model.logits(prefix)
    hidden = {}
    model.encoder.register_forward_hook(lambda mod, inp, out: hidden.setdefault("out", out))
    model.logits(prefix)
    torch.testing.assert_close(base[:, 0], model.heads[0](hidden["out"][:, -1]))


def test_schema_decoder_at_paper_size_and_post_ln():
    """2 layers, width 128, 32 heads, MLP ratio 2; every sublayer ends in a LayerNorm."""
    e, w, a, n = 1152, 128, 778, 3
    model = TransformerDecoderPredictor(_spec(prefix_tokens=2, dim=e, targets=n, vocabulary=Vocabulary(
        tuple(f"s{i}" for i in range(a)))))
    attention = 4 * w * w + 4 * w + 2 * w  # in/out projections + the LayerNorm after the attention
    layer = 2 * attention + (w * 2 * w + 2 * w) + (2 * w * w + w) + 3 * 2 * w
    expected = (e * w + w) + n * w + 2 * layer + (w * w + w) + (w * a + a)
    assert _count(model) == expected
    assert model.layers[0].self_attn.attention.num_heads == 32
    hidden = {}
    model.layers[-1].register_forward_hook(lambda mod, inp, out: hidden.setdefault("out", out))
    model.eval().logits(torch.randn(2, 2, e))
    out = hidden["out"]
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, n), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, n), atol=1e-3, rtol=0)


def test_bracket_queries_are_start_and_goal():
    torch.manual_seed(0)
    model = TransformerDecoderPredictor(_spec(prefix_tokens=2, targets=3), width=16, heads=2, query="bracket").eval()
    assert model.queries is None and model.query_positions.shape == (5, 16)
    memory = torch.randn(2, 2, 16)
    queries = model._queries(memory)
    torch.testing.assert_close(queries[:, 0], memory[:, 0])
    torch.testing.assert_close(queries[:, -1], memory[:, -1])
    assert queries[:, 1:-1].abs().sum() == 0
    assert model.logits(torch.randn(2, 2, 16)).shape == (2, 3, 6)
    with pytest.raises(ValueError, match="query"):
        TransformerDecoderPredictor(_spec(), query="random")


def _toy(n, g, protos, seen=3, targets=2):
    """Seen clips are classes c, c+1, c+2 (+ noise); the targets are the next ones."""
    classes = torch.randint(0, len(protos), (n,), generator=g)
    prefix = torch.stack([protos[(classes + i) % len(protos)] for i in range(seen)], 1)
    prefix = prefix + 0.3 * torch.randn(prefix.shape, generator=g)
    tokens = torch.tensor([VOCAB.encode([int(c + seen + j) % len(protos) for j in range(targets)], targets + 2)
                           for c in classes])
    return prefix, tokens


@pytest.mark.parametrize(("factory", "kwargs"), [
    (TransformerEncoderPredictor, {"width": 32, "heads": 4, "layers": 2, "ff": 64}),
    (TransformerDecoderPredictor, {"width": 32, "heads": 4, "layers": 2}),
    (TransformerDecoderPredictor, {"width": 32, "heads": 4, "layers": 2, "query": "bracket"}),
])
def test_baselines_learn_a_toy_task_and_meet_the_contract(factory, kwargs):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(6, 16, generator=g)
    model = factory(_spec(targets=2), **kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        prefix, tokens = _toy(32, g, protos)
        loss = model.loss(prefix, tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
    prefix, tokens = _toy(64, g, protos)
    predicted = model.eval().predict(prefix)
    assert predicted == model.predict(prefix)  # eval: no dropout
    assert all(len(p) == 3 and p[-1] == VOCAB.eos for p in predicted)
    correct = sum(p[i] == t[1 + i].item() for p, t in zip(predicted, tokens, strict=True) for i in range(2))
    assert correct / (2 * len(tokens)) > 0.6  # chance is 1/6
    assert [len(c) for c in model.candidates(prefix[:3], k=4)] == [4, 4, 4]


def test_padding_slots_are_ignored():
    model = TransformerEncoderPredictor(_spec(targets=3), width=16, heads=2, layers=1, ff=32).eval()
    prefix = torch.randn(2, 3, 16)
    short = torch.tensor([VOCAB.encode([1], 5), VOCAB.encode([2, 3, 4], 5)])
    targets = model.slot_targets(short)
    assert targets.tolist() == [[1, -100, -100], [2, 3, 4]]
    logits = model.logits(prefix)
    manual = torch.nn.functional.cross_entropy(logits[[0, 1, 1, 1], [0, 0, 1, 2]], torch.tensor([1, 2, 3, 4]))
    torch.testing.assert_close(model.loss(prefix, short), manual)
