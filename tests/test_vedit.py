"""VEDiT (specs/vedit.md §1-§3): Table 7's parameter counts, the blocks against hand-written references, the
predictor contract, guidance, positions, training through the sampling loop, and composition with aggregators."""

from __future__ import annotations

import pytest
import torch
from benchkit_predictors._attentive_classifier import AttentiveClassifier
from benchkit_predictors._joint_attention import JointAttention
from benchkit_predictors._vedit_transformer import VEDiTBlock
from benchkit_predictors.vedit import VEDiT, clip_positions

from benchkit.learn.training import CellModel
from benchkit.registry.interfaces import FeatureSpec, PredictorSpec
from benchkit.sequence.vocabulary import Vocabulary

COIN = Vocabulary(tuple(f"step{i}" for i in range(778)))  # COIN step forecasting: 778 classes, E = 1152 (SigLIP)
SMALL = Vocabulary(tuple(f"a{i}" for i in range(6)))

# Table 7 (trainable parameters) and the analytic count with E = 1152 (spec §1).
TABLE7 = {
    "vedit-single-1280": (1, 1280, 62e6),
    "vedit-tiny-1280": (3, 1280, 165e6),
    "vedit-small-1280": (6, 1280, 342e6),
    "vedit-large-1280": (12, 1280, 696e6),
    "vedit-xl-1280": (18, 1280, 1.05e9),
    "vedit-single-2048": (1, 2048, 132e6),
    "vedit-tiny-2048": (3, 2048, 418e6),
    "vedit-small-2048": (6, 2048, 871e6),
    "vedit-medium-2048": (9, 2048, 1.34e9),
    "vedit-large-2048": (12, 2048, 1.77e9),
}
SINGLE = ("vedit-single-1280", "vedit-single-2048")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on shared cores: one intra-op thread is faster and immune to oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def analytic(layers: int, d: int) -> int:
    return (layers - 1) * (36 * d * d + 30 * d) + 23 * d * d + 20 * d + 3 * d * d + 3718 * d + 1152


def _trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _build_meta(registry, name: str) -> VEDiT:
    spec = PredictorSpec(prefix_dim=1152, prefix_tokens=8, vocabulary=COIN, max_len=3)
    with torch.device("meta"):
        return registry.build("predictor", registry.resolve("predictor", name), spec)


@pytest.mark.parametrize("name", [n for n in TABLE7 if n not in SINGLE])
def test_table7_trainable_parameters(registry, name):
    layers, d, reported = TABLE7[name]
    model = _build_meta(registry, name)
    counted = _trainable(model.denoiser)  # Table 7 excludes the task's classifier and the frozen encoder
    assert counted == analytic(layers, d)
    assert abs(counted - reported) / reported < 0.015, (name, counted, reported)


@pytest.mark.parametrize("name", SINGLE)
def test_table7_single_rows_match_denoiser_plus_a_778_way_classifier(registry, name):
    """The spec's inconsistency explained: the one-block rows equal the denoiser plus the COIN classifier."""
    layers, d, reported = TABLE7[name]
    model = _build_meta(registry, name)
    assert _trainable(model.denoiser) == analytic(layers, d)
    assert abs(_trainable(model) - reported) / reported < 0.015
    assert _trainable(model.classifier) == 11 * 1152**2 + 13 * 1152 + 1152 * 778 + 778  # query, block, head


def test_plugin_defaults_are_the_papers_model(registry):
    default = _build_meta(registry, "vedit")
    assert _trainable(default.denoiser) == analytic(12, 2048)
    assert len(default.denoiser.blocks) == 12 and default.denoiser.blocks[0].attn.heads == 32
    assert (len(default.schedule), default.guidance) == (24, 7.0)


def _spec(prefix_tokens=3, dim=8, targets=1, vocabulary=SMALL):
    return PredictorSpec(prefix_dim=dim, prefix_tokens=prefix_tokens, vocabulary=vocabulary, max_len=targets + 2)


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    spec_kwargs = {k: kwargs.pop(k) for k in ("prefix_tokens", "targets") if k in kwargs}
    options = {"layers": 2, "dim": 32, "head_dim": 16, "steps": 4, "zero_init": False, **kwargs}
    return VEDiT(_spec(**spec_kwargs), **options)


def _reference_joint_attention(attn: JointAttention, target, seen, positions):
    """Per-head loop, explicit softmax and RoPE as complex rotation; [target, seen] order."""
    d, nt = attn.head_dim, target.shape[1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.polar(torch.ones(positions.shape[-1], d // 2, dtype=torch.float64), positions[0, :, None] * theta)

    def rope(x):  # (B, N, d)
        z = torch.view_as_complex(x.double().unflatten(-1, (d // 2, 2)).contiguous())
        return torch.view_as_real(z * rot).flatten(-2).float()

    q = torch.cat([attn.to_q(target), attn.add_q(seen)], 1)
    k = torch.cat([attn.to_k(target), attn.add_k(seen)], 1)
    v = torch.cat([attn.to_v(target), attn.add_v(seen)], 1)
    heads = []
    for h in range(attn.heads):
        sl = slice(h * d, (h + 1) * d)
        weights = torch.softmax(rope(q[..., sl]) @ rope(k[..., sl]).transpose(1, 2) / d**0.5, -1)
        heads.append(weights @ v[..., sl])
    out = torch.cat(heads, -1)
    return attn.to_out(out[:, :nt]), attn.add_out(out[:, nt:])


def test_joint_attention_matches_per_head_reference():
    torch.manual_seed(0)
    attn = JointAttention(dim=32, heads=2, head_dim=16)
    target, seen = torch.randn(2, 3, 32), torch.randn(2, 4, 32)
    positions = torch.tensor([[4, 5, 6, 0, 1, 2, 3]])
    ours = attn(target, seen, positions)
    ref = _reference_joint_attention(attn, target, seen, positions)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_context_pre_only_block_and_zero_init_identity():
    block = VEDiTBlock(32, 2, 16, context_pre_only=True, zero_init=True)
    assert block.attn.add_out is None and block.ff_seen is None
    target, seen, temb = torch.randn(2, 3, 32), torch.randn(2, 4, 32), torch.randn(2, 32)
    positions = torch.arange(7)[None]
    out, seen_out = block(target, seen, temb, positions)
    assert seen_out is None
    torch.testing.assert_close(out, target)  # adaLN-Zero: gates start at 0, the block is the identity
    full = VEDiTBlock(32, 2, 16, zero_init=True)
    out, seen_out = full(target, seen, temb, positions)
    torch.testing.assert_close((out, seen_out), (target, seen))
    trained = VEDiTBlock(32, 2, 16, zero_init=False)
    assert not torch.allclose(trained(target, seen, temb, positions)[0], target)


def test_contract_loss_predict_candidates():
    model = _model(targets=3, prefix_tokens=2)
    prefix = torch.randn(4, 2, 8)
    tokens = torch.tensor([SMALL.encode([0, 5, 2], 5)] * 4)
    loss = model.loss(prefix, tokens)
    assert loss.dim() == 0 and torch.isfinite(loss)
    predicted = model.eval().predict(prefix)
    assert len(predicted) == 4 and all(len(p) == 4 and p[-1] == SMALL.eos for p in predicted)
    assert all(2 <= t < 2 + 6 for p in predicted for t in p[:-1])
    assert SMALL.decode(predicted[0]) == [t - 2 for t in predicted[0][:-1]]
    candidates = model.candidates(prefix, k=5)
    assert len(candidates) == 4 and all(len(c) == 5 and len(c[0]) == 4 for c in candidates)
    torch.manual_seed(3)
    best = model.candidates(prefix, k=1)
    torch.manual_seed(3)
    assert best == [[p] for p in model.predict(prefix)]  # k = 1 is the argmax sequence


def test_guidance_scale_one_is_the_conditional_prediction():
    model = _model(guidance=1.0)
    x, seen = torch.randn(2, 1, 8), torch.randn(2, 3, 8)
    positions = torch.cat([model.target_positions, model.seen_positions])[None]
    conditional = model.denoiser(x, torch.full((2,), 500.0), seen, positions)
    torch.testing.assert_close(model.guided_velocity(x, 500.0, seen), conditional)
    model.guidance = 7.0
    unconditional = model.denoiser(x, torch.full((2,), 500.0), torch.zeros_like(seen), positions)
    expected = unconditional + 7.0 * (conditional - unconditional)
    torch.testing.assert_close(model.guided_velocity(x, 500.0, seen), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(expected, conditional)


def test_noise_std_scales_the_start_noise():
    """``noise_std`` scales the sampler's start noise (and the auxiliary loss's): at 0 the loop starts from zeros,
    so sampling no longer depends on the random state; at 0.2 it differs from the paper's N(0, I)."""
    seen = torch.randn(2, 3, 8)
    still = _model(noise_std=0.0)
    torch.manual_seed(1)
    first = still.sample(seen)
    torch.manual_seed(2)
    torch.testing.assert_close(still.sample(seen), first)
    torch.testing.assert_close(still.sample(seen, torch.zeros_like(first)), first)
    small, paper = _model(noise_std=0.2), _model()
    torch.manual_seed(3)
    noise = torch.randn_like(first)
    torch.manual_seed(3)
    torch.testing.assert_close(small.sample(seen), paper.sample(seen, 0.2 * noise))
    with pytest.raises(ValueError, match="noise_std"):
        _model(noise_std=-1.0)


@pytest.mark.parametrize("mode", ["learned", "drop"])
def test_other_unconditional_inputs(mode):
    model = _model(unconditional=mode)
    x, seen = torch.randn(2, 1, 8), torch.randn(2, 3, 8)
    t = torch.full((2,), 250.0)
    if mode == "learned":
        assert model.null_seen.shape == (1, 1, 8)
        null, positions = model.null_seen.expand_as(seen), torch.cat([model.target_positions, model.seen_positions])
    else:
        null, positions = seen[:, :0], model.target_positions
    full = torch.cat([model.target_positions, model.seen_positions])[None]
    v_c, v_u = model.denoiser(x, t, seen, full), model.denoiser(x, t, null, positions[None])
    torch.testing.assert_close(model.guided_velocity(x, 250.0, seen), v_u + 7.0 * (v_c - v_u), atol=1e-5, rtol=1e-5)


def test_positions_layouts_and_tokens_per_clip():
    assert clip_positions("forecast", 8, 1) == ([8], list(range(8)))  # COIN: 8 seen clips, the next at 8
    assert clip_positions("planning", 2, 3) == ([1, 2, 3], [0, 4])  # start, T = 3 steps, goal
    assert clip_positions("planning", 3, 2) == ([2, 3], [0, 1, 4])
    model = _model(prefix_tokens=6, tokens_per_clip=2, targets=2)
    assert model.seen_positions.tolist() == [0, 0, 1, 1, 2, 2]
    assert model.target_positions.tolist() == [3, 3, 4, 4]
    per_token = _model(prefix_tokens=6, tokens_per_clip=2, targets=1, positions="token")
    assert per_token.seen_positions.tolist() == [0, 1, 2, 3, 4, 5] and per_token.target_positions.tolist() == [6, 7]
    with pytest.raises(ValueError, match="whole clips"):
        _model(prefix_tokens=5, tokens_per_clip=2)
    with pytest.raises(ValueError, match="layout"):
        _model(layout="sideways")


def test_slots_per_clip_interleaves_verb_and_noun_queries():
    """Ego4D LTA: Z clips, each read by two queries → [v0, n0, v1, n1, ...] as the dataset interleaves them."""
    model = _model(targets=6, prefix_tokens=4, slots_per_clip=2)
    assert model.target_clips == 3 and model.target_positions.tolist() == [4, 5, 6]
    assert model.classifier.query.shape == (1, 2, 8)
    assert model.logits(torch.randn(2, 4, 8)).shape == (2, 6, 6)
    with pytest.raises(ValueError, match="slots_per_clip"):
        _model(targets=5, slots_per_clip=2)


def test_cross_entropy_reaches_the_first_block_through_the_loop_and_checkpointing_is_exact():
    prefix, tokens = torch.randn(3, 3, 8), torch.tensor([SMALL.encode([1], 3)] * 3)
    grads = []
    for checkpoint in (False, True):
        model = _model(zero_init=True, checkpoint=checkpoint)
        torch.manual_seed(7)
        model.loss(prefix, tokens).backward()
        first = model.denoiser.blocks[0]
        assert first.norm1_target.linear.weight.grad.abs().sum() > 0  # adaLN-Zero learns from the CE
        grads.append(torch.cat([p.grad.flatten() for p in model.denoiser.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_auxiliary_flow_matching_loss():
    model = _model(fm_weight=0.5, prefix_tokens=4)
    prefix = torch.randn(3, 4, 8)
    fm = model.flow_matching_loss(prefix)
    assert fm.dim() == 0 and torch.isfinite(fm) and fm > 0
    tokens = torch.tensor([SMALL.encode([2], 3)] * 3)
    torch.manual_seed(1)
    with_aux = model.loss(prefix, tokens)
    model.fm_weight = 0.0
    torch.manual_seed(1)
    assert with_aux > model.loss(prefix, tokens)
    with pytest.raises(ValueError, match="two"):
        _model(fm_weight=0.5, prefix_tokens=1)


def test_attentive_classifier_shapes_init_and_deep_variant():
    torch.manual_seed(0)
    shallow = AttentiveClassifier(32, 10, heads=4)
    deep = AttentiveClassifier(32, 10, heads=4, depth=4)
    assert len(shallow.blocks) == 0 and len(deep.blocks) == 3
    assert all(b.bias.abs().sum() == 0 for b in (shallow.cross.q, shallow.cross.kv, shallow.cross.mlp.fc1))
    assert not hasattr(shallow.cross, "proj")  # V-JEPA 2's cross-attention has no output projection
    x = torch.randn(5, 7, 32)
    assert shallow(x).shape == (5, 1, 10) and deep(x).shape == (5, 1, 10)
    # Only the blocks differ: the deep variant adds 3 pre-LN self-attention blocks (12E² + 13E each).
    assert _trainable(deep) - _trainable(shallow) == 3 * (12 * 32**2 + 13 * 32)


def _prototype_task(n, generator, protos, seen=3):
    """Random prototypes: the seen clips are classes c, c+1, c+2 (+ noise); the next clip is class c+3."""
    classes = torch.randint(0, len(protos), (n,), generator=generator)
    prefix = torch.stack([protos[(classes + i) % len(protos)] for i in range(seen)], 1)
    prefix = prefix + 0.3 * torch.randn(prefix.shape, generator=generator)
    tokens = torch.tensor([SMALL.encode([int(c + seen) % len(protos)], 3) for c in classes])
    return prefix, tokens


def test_training_through_the_sampler_learns_a_toy_task():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(6, 16, generator=g)
    model = VEDiT(_spec(dim=16), layers=2, dim=64, head_dim=32, steps=6)  # the paper's path: CE through 6 guided steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        prefix, tokens = _prototype_task(32, g, protos)
        loss = model.loss(prefix, tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    prefix, tokens = _prototype_task(64, g, protos)
    predicted = model.eval().predict(prefix)
    accuracy = sum(p[0] == t[1].item() for p, t in zip(predicted, tokens, strict=True)) / len(tokens)
    assert accuracy > 0.6  # chance is 1/6


def test_composes_with_aggregators(registry):
    """A grid neither paper ran: InvPatch compresses the patch tokens, VEDiT predicts the next clips; and the
    frame tokens of C clips as C seen clips."""
    torch.manual_seed(0)
    spec = FeatureSpec(level="patch", dim=16, frames=4, grid=(4, 4))
    aggregator = registry.build("aggregator", registry.resolve("aggregator", "invpatch-tiny"), spec)
    pspec = PredictorSpec(aggregator.out_dim, aggregator.num_tokens, SMALL, max_len=5)
    vedit = registry.build("predictor", registry.resolve("predictor", "vedit-tiny", {"steps": 3}), pspec)
    model = CellModel(aggregator, vedit)
    tokens = torch.tensor([SMALL.encode([1, 2, 3], 5)] * 2)
    model.loss(torch.randn(2, 4, 16, 16), tokens).backward()
    assert all(p.grad is not None for p in aggregator.parameters() if p.requires_grad)
    assert [len(p) for p in model.eval().predict(torch.randn(2, 4, 16, 16))] == [4, 4]

    frame = FeatureSpec(level="frame", dim=16, frames=8, grid=(1, 1))
    clips = registry.build("aggregator", registry.resolve("aggregator", "frame-tokens"), frame)
    pspec = PredictorSpec(clips.out_dim, clips.num_tokens, SMALL, max_len=3)
    vedit = registry.build("predictor", registry.resolve("predictor", "vedit-tiny", {"steps": 3}), pspec)
    assert vedit.seen_positions.tolist() == list(range(8)) and vedit.target_positions.tolist() == [8]
    assert torch.isfinite(CellModel(clips, vedit).loss(torch.randn(2, 8, 16), tokens[:, :3]))


def test_sixteen_tokens_per_clip_reach_the_classifier(registry):
    """COIN as the paper feeds it (benchmarks/vedit_coin.yaml): 8 clips of 16 [CLS] tokens at the patch level,
    ``per-clip`` + ``frame-tokens`` keeps all 128 in clip order, VEDiT reads 16 tokens per clip (one RoPE position
    per clip) and denoises 16-token target clips that the attentive classifier pools."""
    spec = FeatureSpec(level="patch", dim=16, frames=8, grid=(1, 16))
    clips = registry.build("aggregator", registry.resolve("aggregator", "per-clip", {"inner": "frame-tokens"}), spec)
    x = torch.randn(2, 8, 16, 16)
    assert clips.num_tokens == 128
    torch.testing.assert_close(clips(x), x.reshape(2, 128, 16))
    pspec = PredictorSpec(clips.out_dim, clips.num_tokens, SMALL, max_len=3)
    kwargs = {"steps": 2, "tokens_per_clip": 16}
    vedit = registry.build("predictor", registry.resolve("predictor", "vedit-tiny", kwargs), pspec)
    assert vedit.seen_positions.tolist() == [c for c in range(8) for _ in range(16)]
    assert vedit.target_positions.tolist() == [8] * 16
    assert vedit.sample(clips(x)).shape == (2, 16, 16)
    model = CellModel(clips, vedit)
    tokens = torch.tensor([SMALL.encode([1], 3)] * 2)
    assert torch.isfinite(model.loss(x, tokens))
    assert [len(p) for p in model.eval().predict(x)] == [2, 2]
