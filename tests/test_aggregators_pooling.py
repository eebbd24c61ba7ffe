"""The pooling baselines of spec invpatch.md §3: max, GeM, NetVLAD, LSTM, attention pooling.

Shapes at both levels over frame counts and grids (tiny widths), parameter counts against closed forms at paper
width (built on the meta device: shapes without memory), gradient flow to every parameter, and hand-checked values.
"""

from __future__ import annotations

import math

import benchkit_aggregators.attention_pool as attention_pool_plugin
import benchkit_aggregators.gem as gem_plugin
import benchkit_aggregators.lstm as lstm_plugin
import benchkit_aggregators.max as max_plugin
import benchkit_aggregators.netvlad as netvlad_plugin
import pytest
import torch
import torch.nn.functional as F
from benchkit_aggregators.attention_pool import AttentionPool
from benchkit_aggregators.gem import GeM
from benchkit_aggregators.lstm import RecurrentAggregator
from benchkit_aggregators.max import MaxPool
from benchkit_aggregators.netvlad import NetVLAD, VLADCore
from torch import nn

from benchkit.registry.interfaces import FeatureSpec
from benchkit.registry.plugins import Registry

D = 16
FACTORIES = {
    "max": (MaxPool, {}),
    "gem": (GeM, {}),
    "attention-pool": (AttentionPool, {}),
    "netvlad": (NetVLAD, {"out_dim": 12}),
    "netvlad-reference": (NetVLAD, {"out_dim": 12, "descriptors": "reference"}),
    "lstm": (RecurrentAggregator, {"hidden_size": 8, "out_dim": 12}),
    "lstm-gru": (RecurrentAggregator, {"hidden_size": 8, "num_layers": 2, "cell": "gru", "out_dim": 12}),
}
GRIDS = [(8, 8), (14, 14), (4, 6)]
FRAMES = [4, 8, 16, 32]


def spec(level: str, frames: int = 4, grid: tuple[int, int] = (2, 3), dim: int = D) -> FeatureSpec:
    return FeatureSpec(level=level, dim=dim, frames=frames, grid=grid)


def tokens(s: FeatureSpec, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, s.frames, s.dim) if s.level == "frame" else (batch, s.frames, s.patches, s.dim)
    return torch.randn(shape, generator=g)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(name: str, s: FeatureSpec) -> nn.Module:
    torch.manual_seed(0)
    cls, kwargs = FACTORIES[name]
    return cls(s, **kwargs)


# -- registration -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "cls"),
    [
        (max_plugin, "max", MaxPool),
        (gem_plugin, "gem", GeM),
        (netvlad_plugin, "netvlad", NetVLAD),
        (lstm_plugin, "lstm", RecurrentAggregator),
        (attention_pool_plugin, "attention-pool", AttentionPool),
    ],
)
def test_registers_at_both_levels(module, name, cls):
    registry = Registry()
    module.benchkit_register(registry)
    entry = registry.entries["aggregator"][name]
    assert entry.factory is cls
    assert entry.meta["levels"] == ("frame", "patch")


# -- shapes ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", FRAMES)
@pytest.mark.parametrize("name", FACTORIES)
def test_frame_level_shape(name, frames):
    s = spec("frame", frames)
    model = build(name, s)
    out = model(tokens(s))
    assert model.num_tokens == 1
    assert out.shape == (2, model.num_tokens, model.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
@pytest.mark.parametrize("frames", FRAMES)
@pytest.mark.parametrize("name", FACTORIES)
def test_patch_level_shape(name, frames, grid):
    s = spec("patch", frames, grid)
    model = build(name, s)
    out = model(tokens(s))
    assert out.shape == (2, model.num_tokens, model.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("level", ["frame", "patch"])
def test_out_dim_defaults(level):
    s = spec(level)
    for cls in (MaxPool, GeM, AttentionPool, NetVLAD):
        assert cls(s).out_dim == D
    assert RecurrentAggregator(s, hidden_size=4).out_dim == D
    assert NetVLAD(s, out_dim=7).out_dim == 7
    assert RecurrentAggregator(s, hidden_size=4, out_dim=7).out_dim == 7


def test_rejects_unknown_options():
    with pytest.raises(ValueError, match="descriptors"):
        NetVLAD(spec("patch"), descriptors="space")
    with pytest.raises(ValueError, match="cell"):
        RecurrentAggregator(spec("frame"), cell="rnn")


# -- parameter counts -----------------------------------------------------------------------------------------------


def netvlad_params(descriptor_dim: int, clusters: int, out_dim: int) -> int:
    """Centroids K*De, assignment conv K*De + K, projection K*De*out + out."""
    return 2 * clusters * descriptor_dim + clusters + clusters * descriptor_dim * out_dim + out_dim


def rnn_params(gates: int, input_size: int, hidden: int, layers: int, bidirectional: bool) -> int:
    """``gates * (i*h + h*h + 2h)`` per direction per layer; layers after the first see ``directions * h``."""
    dirs = 2 if bidirectional else 1
    total = 0
    for layer in range(layers):
        i = input_size if layer == 0 else dirs * hidden
        total += dirs * gates * (i * hidden + hidden * hidden + 2 * hidden)
    return total


def test_netvlad_frame_projection_at_paper_width():
    with torch.device("meta"):
        model = NetVLAD(spec("frame", 16, (14, 14), dim=768))
    assert (model.proj.in_features, model.proj.out_features) == (6144, 768)
    assert n_params(model) == netvlad_params(768, 8, 768) == 4_731_656


def test_netvlad_patch_projection_at_paper_width():
    with torch.device("meta"):
        model = NetVLAD(spec("patch", 16, (14, 14), dim=768))
    assert (model.proj.in_features, model.proj.out_features) == (98304, 768)
    assert n_params(model) == netvlad_params(16 * 768, 8, 768) == 75_694_856  # ≈75M, as the spec says


def test_netvlad_tiny_count_matches_formula():
    model = NetVLAD(spec("patch", 4, (2, 3)), clusters=3, out_dim=5)
    assert n_params(model) == netvlad_params(4 * D, 3, 5)


def test_frame_lstm_at_paper_width():
    with torch.device("meta"):
        model = RecurrentAggregator(spec("frame", 16, (14, 14), dim=768))
    assert isinstance(model.rnn, nn.LSTM)
    assert (model.rnn.hidden_size, model.rnn.num_layers, model.rnn.bidirectional) == (2048, 2, True)
    assert n_params(model.rnn) == rnn_params(4, 768, 2048, 2, True)
    assert (model.head.in_features, model.head.out_features) == (4096, 768)
    proj = 768 * 768 + 768
    head = 4096 * 768 + 768
    assert n_params(model) == proj + rnn_params(4, 768, 2048, 2, True) + head == 150_603_264


@pytest.mark.parametrize(("cell", "gates", "total"), [("lstm", 4, 5_315_328), ("gru", 3, 4_134_144)])
def test_patch_lstm_at_paper_width(cell, gates, total):
    with torch.device("meta"):
        model = RecurrentAggregator(spec("patch", 16, (14, 14), dim=768), cell=cell)
    assert isinstance(model.input_proj, nn.Identity)
    assert n_params(model) == rnn_params(gates, 768, 768, 1, False) + 768 * 768 + 768 == total


@pytest.mark.parametrize("level", ["frame", "patch"])
def test_tiny_lstm_count_matches_formula(level):
    model = RecurrentAggregator(spec(level), hidden_size=6, num_layers=3, bidirectional=True, out_dim=5)
    proj = D * D + D if level == "frame" else 0
    assert n_params(model) == proj + rnn_params(4, D, 6, 3, True) + 12 * 5 + 5


def test_parameter_free_poolings():
    for level in ("frame", "patch"):
        assert n_params(MaxPool(spec(level))) == 0
        assert n_params(GeM(spec(level))) == 1
        assert n_params(AttentionPool(spec(level))) == D


# -- gradients ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["frame", "patch"])
@pytest.mark.parametrize("name", FACTORIES)
def test_every_parameter_gets_a_gradient(name, level):
    s = spec(level, frames=4, grid=(2, 3))
    model = build(name, s)
    x = tokens(s, seed=1).requires_grad_()
    out = model(x)
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * target).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} got a zero gradient"


# -- hand-checked values --------------------------------------------------------------------------------------------


def test_max_by_hand():
    x = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [-1.0, 5.0]]])  # (1, T=3, D=2)
    assert torch.equal(MaxPool(spec("frame", 3, dim=2))(x), torch.tensor([[[3.0, 5.0]]]))
    p = torch.tensor([[[[1.0, -4.0], [0.0, 2.0]], [[-3.0, -1.0], [7.0, -5.0]]]])  # (1, T=2, P=2, D=2)
    assert torch.equal(MaxPool(spec("patch", 2, (1, 2), dim=2))(p), torch.tensor([[[7.0, 2.0]]]))


def test_gem_by_hand():
    x = torch.tensor([[[1.0, -2.0], [3.0, 4.0]]])  # (1, T=2, D=2)
    model = GeM(spec("frame", 2, dim=2))
    assert model.p.item() == 3.0 and model.eps == 1e-6
    cube_root = torch.tensor([[[(0.5 * (1 + 27)) ** (1 / 3), (0.5 * (1e-18 + 64)) ** (1 / 3)]]])
    torch.testing.assert_close(model(x), cube_root)
    mean_of_clamped = torch.tensor([[[2.0, (1e-6 + 4.0) / 2]]])
    torch.testing.assert_close(GeM(spec("frame", 2, dim=2), p=1.0)(x), mean_of_clamped)
    patch = x.view(1, 1, 2, 2)  # the same four values as one frame of two patches
    torch.testing.assert_close(GeM(spec("patch", 1, (1, 2), dim=2), p=1.0)(patch), mean_of_clamped)


def test_gem_negative_features_are_clamped():
    x = -torch.rand(1, 5, 3) - 0.1
    torch.testing.assert_close(GeM(spec("frame", 5, dim=3))(x), torch.full((1, 1, 3), 1e-6))


@pytest.mark.parametrize("level", ["frame", "patch"])
def test_attention_weights_sum_to_one(level):
    s = spec(level)
    model = AttentionPool(s)
    nn.init.normal_(model.u)
    x = tokens(s)
    w = model.weights(x)
    assert w.shape == (2, s.frames * (s.patches if level == "patch" else 1))
    assert (w > 0).all()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2))
    expected = (w.unsqueeze(-1) * x.flatten(1, -2)).sum(dim=1, keepdim=True)
    torch.testing.assert_close(model(x), expected)


def test_attention_pool_by_hand():
    model = AttentionPool(spec("frame", 2, dim=2))
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    torch.testing.assert_close(model(x), torch.tensor([[[0.5, 0.5]]]))  # u = 0 at init: mean pooling
    with torch.no_grad():
        model.u.copy_(torch.tensor([math.log(3.0), 0.0]))  # scores (ln 3, 0) → weights (3/4, 1/4)
    torch.testing.assert_close(model(x), torch.tensor([[[0.75, 0.25]]]))


def naive_vlad(core: VLADCore, x: torch.Tensor) -> torch.Tensor:
    """NetVLAD written out term by term, with explicit (B, K, N, dim) residuals."""
    logits = torch.einsum("kd,bnd->bkn", core.assign.weight.squeeze(-1), x) + core.assign.bias[None, :, None]
    a = torch.softmax(logits, dim=1)
    residuals = x[:, None, :, :] - core.centroids[None, :, None, :]
    vlad = (a.unsqueeze(-1) * residuals).sum(dim=2)
    vlad = F.normalize(vlad, dim=2)
    return F.normalize(vlad.flatten(1), dim=1)


def test_vlad_core_init_and_normalisation():
    torch.manual_seed(0)
    core = VLADCore(D, clusters=8, alpha=50.0)
    c = core.centroids.detach()
    assert (c >= 0).all() and (c < 1).all()  # torch.rand
    torch.testing.assert_close(core.assign.weight.detach().squeeze(-1), 100.0 * c)
    torch.testing.assert_close(core.assign.bias.detach(), -50.0 * c.norm(dim=1))
    x = 0.05 * torch.randn(3, 10, D)
    v = core(x)
    assert v.shape == (3, 8 * D)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(3))  # global L2
    blocks = v.view(3, 8, D).norm(dim=2)
    torch.testing.assert_close(blocks, torch.full((3, 8), 8**-0.5))  # intra-normalised, then scaled together
    torch.testing.assert_close(v, naive_vlad(core, x))


@pytest.mark.parametrize("level", ["frame", "patch"])
def test_netvlad_projects_the_normalised_vlad(level):
    s = spec(level)
    model = NetVLAD(s, out_dim=5)
    x = tokens(s)
    v = model.vlad(model.describe(x))
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(model(x), model.proj(v).unsqueeze(1))


def test_tube_descriptor_groups_one_patch_across_time():
    t, p, d = 3, 4, 2
    x = torch.zeros(1, t, p, d)
    x[0, :, 2, :] = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # only patch 2 differs, per frame
    model = NetVLAD(spec("patch", t, (2, 2), dim=d))
    desc = model.describe(x)
    assert desc.shape == (1, p, t * d)
    assert torch.equal(desc[0, 2], torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    assert not desc[0, [0, 1, 3]].any()
    # the reference reshape (no permute) scatters the same patch over descriptors 0, 2 and 3
    ref = NetVLAD(spec("patch", t, (2, 2), dim=d), descriptors="reference").describe(x)
    assert [i for i in range(p) if ref[0, i].any()] == [0, 2, 3]


def test_tube_netvlad_ignores_patch_order_but_not_frame_order():
    s = spec("patch", 4, (2, 3))
    torch.manual_seed(0)
    model = NetVLAD(s, alpha=1.0)
    x = tokens(s)
    out = model(x)
    torch.testing.assert_close(model(x[:, :, torch.randperm(s.patches)]), out)  # descriptors are a set
    assert not torch.allclose(model(x.flip(1)), out)  # a tube is ordered in time


def test_frame_lstm_concatenates_last_forward_and_backward_states():
    s = spec("frame", 5)
    model = RecurrentAggregator(s, hidden_size=6, out_dim=4)
    x = tokens(s)
    seq, _ = model.rnn(model.input_proj(x))  # (B, T, 2h): forward half at t = T-1, backward half at t = 0
    pooled = torch.cat([seq[:, -1, :6], seq[:, 0, 6:]], dim=-1)
    torch.testing.assert_close(model(x), model.head(pooled).unsqueeze(1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_patch_lstm_is_shared_over_patches_then_averaged(cell):
    s = spec("patch", 5, (2, 3))
    model = RecurrentAggregator(s, hidden_size=6, cell=cell, out_dim=4)
    assert isinstance(model.rnn, nn.LSTM if cell == "lstm" else nn.GRU)
    x = tokens(s)
    finals = [model.rnn(x[:, :, i])[0][:, -1] for i in range(s.patches)]  # one run per patch tube
    expected = model.head(torch.stack(finals, dim=1).mean(dim=1)).unsqueeze(1)
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model(x[:, :, torch.randperm(s.patches)]), expected)
