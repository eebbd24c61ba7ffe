"""The InvPatch aggregation layer (spec invpatch.md §1): parameter counts, shapes, errors, gradients, order."""

from __future__ import annotations

import pytest
import torch
from benchkit_aggregators.invpatch import DropPath, InvPatch, frame_grid

from benchkit.registry.interfaces import FeatureSpec

TINY = {"merge_heads": 3, "cct_heads": 2, "vit_heads": 2, "vit_head_dim": 8}  # width 24: divisible by 3, 2 and 4
C = 24


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(frames: int = 8, grid: tuple[int, int] = (4, 4), dim: int = C, **kwargs) -> InvPatch:
    return InvPatch(FeatureSpec("patch", dim, frames, grid), **{**TINY, **kwargs})


# --- analytic parameter counts (spec §1: merge 2.95M + CCT 30.76M + frame ViT 11.22M = 44.94M) -------------------


def linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def layernorm(c: int) -> int:
    return 2 * c


def mha(c: int) -> int:  # nn.MultiheadAttention(c, heads) with bias: in_proj 3c x c + 3c, out_proj c x c + c
    return linear(c, 3 * c) + linear(c, c)


def merge_count(c: int) -> int:
    return layernorm(c) + mha(c) + linear(c, c)


def cct_count(c: int, merged: int, layers: int) -> int:
    block = (
        linear(c, c)  # message_fc
        + layernorm(c) + mha(c)  # CFA: message_ln, message_attn
        + layernorm(c) + mha(c)  # IFA: ln_1, attn
        + layernorm(c) + linear(c, 4 * c) + linear(4 * c, c)  # FFN: ln_2, c_fc, c_proj
    )
    return (
        c  # class token (frame token fg_t)
        + (merged + 1) * c  # positional embedding shared by the frames
        + layernorm(c)  # ln_pre
        + layers * block
        + layernorm(c)  # ln_post
        + c * c  # proj, no bias
    )


def frame_vit_count(c: int, layers: int, heads: int, head_dim: int, out_dim: int) -> int:
    inner = heads * head_dim
    block = (
        layernorm(c) + linear(c, 3 * inner, bias=False) + linear(inner, c, bias=False)  # Attention
        + layernorm(c) + linear(c, c) + linear(c, c)  # FeedForward, MLP width C
    )
    return layers * block + layernorm(c) + linear(c, out_dim)


def test_parameter_counts_at_vit_b_width_match_the_spec():
    c, merged = 768, 49  # VideoMAE ViT-B/16, tubelet 2, 16 frames → (B, 8, 196, 768) → 49 merged patches
    expected = {
        "merge": merge_count(c),
        "cct": cct_count(c, merged, layers=3),
        "frame_vit": frame_vit_count(c, layers=3, heads=4, head_dim=192, out_dim=c),
    }
    with torch.device("meta"):  # no memory, no initialisation: counts only
        model = InvPatch(FeatureSpec("patch", c, 8, (14, 14)))
    measured = {name: n_params(module) for name, module in model.components().items()}
    assert measured == expected
    assert measured == {"merge": 2_954_496, "cct": 30_759_168, "frame_vit": 11_222_784}
    assert n_params(model) == sum(expected.values()) == 44_936_448  # nothing outside the three stages
    assert [round(expected[k] / 1e6, 2) for k in ("merge", "cct", "frame_vit")] == [2.95, 30.76, 11.22]
    assert round(sum(expected.values()) / 1e6, 2) == 44.94
    assert round(n_params(model) / 1e6) == 45  # the paper's "45M in aggregation"


def test_parameter_counts_follow_the_formulas_at_tiny_width():
    model = tiny(frames=4, grid=(6, 8), out_dim=40, cct_layers=2, vit_layers=1)
    counts = {name: n_params(module) for name, module in model.components().items()}
    assert counts == {
        "merge": merge_count(C),
        "cct": cct_count(C, 12, layers=2),
        "frame_vit": frame_vit_count(C, layers=1, heads=2, head_dim=8, out_dim=40),
    }


# --- shapes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [4, 8, 16, 32])
@pytest.mark.parametrize("grid", [(8, 8), (14, 14), (4, 6)])
def test_shapes(frames, grid):
    torch.manual_seed(0)
    model = tiny(frames, grid).eval()
    assert model.out_dim == C and model.num_tokens == 1
    x = torch.randn(2, frames, grid[0] * grid[1], C)
    with torch.no_grad():
        merged = model.merge(x)
        assert merged.shape == (2, frames, (grid[0] // 2) * (grid[1] // 2), C)
        assert model.cct(merged).shape == (2, frames, C)
        out = model(x)
    assert out.shape == (2, 1, C) and torch.isfinite(out).all()


def test_out_dim_and_batch_of_one():
    model = tiny(out_dim=40).eval()
    assert model.out_dim == 40
    assert model(torch.randn(1, 8, 16, C)).shape == (1, 1, 40)


@pytest.mark.parametrize(
    ("frames", "grid"), [(16, (4, 4)), (8, (2, 4)), (4, (2, 2)), (32, (4, 8)), (1, (1, 1)), (6, (2, 3)), (7, (1, 7))]
)
def test_frame_grid_is_the_most_square_factorisation(frames, grid):
    assert frame_grid(frames) == grid
    assert tiny(frames=frames).frame_grid == grid


def test_frame_grid_from_one_side_or_both():
    assert frame_grid(8, pos_h=4) == (4, 2)
    assert frame_grid(8, pos_w=8) == (1, 8)
    assert frame_grid(16, 2, 8) == (2, 8)
    assert tiny(frames=16, pos_h=2, pos_w=8).frame_grid == (2, 8)


# --- clear errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [(7, 7), (4, 5), (3, 4)])
def test_odd_patch_grid_is_refused_at_construction(grid):
    with pytest.raises(ValueError, match=rf"patch grid {grid[0]}x{grid[1]} cannot be merged 2x2"):
        tiny(grid=grid)


@pytest.mark.parametrize(("frames", "pos_h", "pos_w"), [(8, 3, 3), (16, 4, 8), (8, 3, None), (8, None, 5)])
def test_frame_grid_must_hold_exactly_the_frames(frames, pos_h, pos_w):
    with pytest.raises(ValueError, match="frame grid"):
        tiny(frames=frames, pos_h=pos_h, pos_w=pos_w)


def test_other_construction_errors():
    with pytest.raises(ValueError, match="patch tokens; got level 'frame'"):
        InvPatch(FeatureSpec("frame", C, 8, (4, 4)), **TINY)
    with pytest.raises(ValueError, match="not divisible by merge_heads=3"):
        tiny(dim=16)
    with pytest.raises(ValueError, match="not divisible by cct_heads=5"):
        tiny(cct_heads=5)
    with pytest.raises(ValueError, match="divisible by 4"):
        tiny(dim=18)


def test_wrong_input_shape_is_a_clear_error():
    model = tiny(frames=8, grid=(4, 4))
    with pytest.raises(ValueError, match=r"built for \(B, 8, 16, 24\) patch tokens \(grid 4x4\), got \(2, 4, 16, 24\)"):
        model(torch.randn(2, 4, 16, C))
    with pytest.raises(ValueError, match="got"):
        model(torch.randn(2, 8, 16))


# --- training behaviour -------------------------------------------------------------------------------------------


def test_every_parameter_gets_a_nonzero_gradient():
    torch.manual_seed(0)
    model = tiny(frames=4, grid=(4, 6), out_dim=12, drop_path=0.0).train()
    model(torch.randn(3, 4, 24, C)).square().sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(p.requires_grad for p in model.parameters())


def test_temporal_order_matters_only_through_the_frame_vit():
    torch.manual_seed(0)
    model = tiny(frames=8, grid=(4, 4)).eval()
    x = torch.randn(2, 8, 16, C)
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    with torch.no_grad():
        out, out_perm = model(x), model(x[:, perm])
        frames, frames_perm = model.cct(model.merge(x)), model.cct(model.merge(x[:, perm]))
    assert not torch.allclose(out, out_perm, atol=1e-4)  # the frame ViT's positions carry the order
    torch.testing.assert_close(frames_perm, frames[:, perm], atol=1e-5, rtol=1e-5)  # merge + CCT: equivariant


def test_merging_sees_only_its_own_2x2_window_and_no_position_inside_it():
    torch.manual_seed(0)
    model = tiny(frames=2, grid=(4, 6)).eval()
    x = torch.randn(1, 2, 24, C)
    with torch.no_grad():
        base = model.merge(x)
        # perturb patch (row 3, col 2) of frame 1: only merged token (row 1, col 1) of frame 1 may change
        y = x.clone()
        y[0, 1, 3 * 6 + 2] += torch.randn(C)  # not a constant shift, which the LayerNorm would remove
        changed = (model.merge(y) - base).abs().sum(-1) > 1e-6
        expected = torch.zeros(1, 2, 6, dtype=torch.bool)
        expected[0, 1, 1 * 3 + 1] = True
        assert torch.equal(changed, expected)
        # swapping two patches inside a window leaves the merged token unchanged
        z = x.clone()
        z[0, :, [0, 7]] = x[0, :, [7, 0]]
        torch.testing.assert_close(model.merge(z), base, atol=1e-5, rtol=1e-5)


def test_without_merging_the_cct_sees_every_patch_and_where_it_is():
    """The `merge=False` ablation: no merge parameters, any grid (odd too), and the position inside a 2x2 window
    now matters, which the merged model cannot see (test above)."""
    torch.manual_seed(0)
    merged = tiny(frames=2, grid=(4, 6))
    whole = InvPatch(FeatureSpec("patch", C, 2, (4, 6)), cct_heads=2, vit_heads=2, vit_head_dim=8, merge=False)
    assert n_params(whole.components()["merge"]) == 0
    assert whole.cct.positional_embedding.shape[0] == 24 + 1 and merged.cct.positional_embedding.shape[0] == 6 + 1
    assert InvPatch(FeatureSpec("patch", C, 2, (3, 5)), cct_heads=2, vit_heads=2, vit_head_dim=8, merge=False)(
        torch.randn(2, 2, 15, C)).shape == (2, 1, C)
    with pytest.raises(ValueError, match="no effect with merge=False"):
        tiny(frames=2, grid=(4, 6), merge=False, merge_heads=2)  # a setting the ablation would ignore
    x = torch.randn(1, 2, 24, C)
    z = x.clone()
    z[0, :, [0, 7]] = x[0, :, [7, 0]]  # two patches of one 2x2 window swapped
    with torch.no_grad():
        whole.eval(), merged.eval()
        assert (whole(z) - whole(x)).abs().max() > 1e-4
        torch.testing.assert_close(merged(z), merged(x), atol=1e-5, rtol=1e-5)


def test_without_layer_norm_a_tokens_size_reaches_the_output():
    """The `layer_norm=False` ablation: no LayerNorm left in any stage (2 x C parameters fewer per norm), and
    scaling one patch token, which every pre-LN stage would normalise away before the attention reads it, now moves
    the output."""
    torch.manual_seed(0)
    normed, bare = tiny(frames=2), tiny(frames=2, layer_norm=False)
    norms = sum(isinstance(m, torch.nn.LayerNorm) for m in normed.modules())
    assert norms > 0 and not any(isinstance(m, torch.nn.LayerNorm) for m in bare.modules())
    assert n_params(normed) - n_params(bare) == norms * layernorm(C)
    x = torch.randn(1, 2, 16, C)
    z = x.clone()
    z[0, 1, :4] *= 3.0  # one 2x2 window of frame 1, three times larger: the same after the merge's LayerNorm
    with torch.no_grad():
        normed.eval(), bare.eval()
        torch.testing.assert_close(normed.merge(z), normed.merge(x), atol=1e-4, rtol=1e-4)
        assert (bare.merge(z) - bare.merge(x)).abs().max() > 1e-2
        assert (bare(z) - bare(x)).abs().max() > 1e-3


def test_without_pooling_frames_the_decoder_gets_a_token_per_frame():
    """The `pool_frames=False` ablation: same weights, the frame ViT's T tokens instead of their mean (their mean
    through the same Linear is the pooled model's token), and the registry's token count says so."""
    torch.manual_seed(0)
    pooled = tiny(frames=4)
    torch.manual_seed(0)
    per_frame = tiny(frames=4, pool_frames=False)
    assert pooled.num_tokens == 1 and per_frame.num_tokens == 4 and n_params(pooled) == n_params(per_frame)
    x = torch.randn(2, 4, 16, C)
    with torch.no_grad():
        pooled.eval(), per_frame.eval()
        tokens, token = per_frame(x), pooled(x)
    assert tokens.shape == (2, 4, per_frame.out_dim) and token.shape == (2, 1, pooled.out_dim)
    torch.testing.assert_close(tokens.mean(dim=1, keepdim=True), token, atol=1e-5, rtol=1e-5)
    assert (tokens - token).abs().max() > 1e-3  # the frames' tokens differ from their mean


def test_drop_path_is_inactive_in_eval_and_active_in_training():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 16, C)
    for mode in ("sample", "token"):
        model = tiny(drop_path=0.5, drop_path_mode=mode)
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x), model(x))
        model.train()
        with torch.no_grad():
            assert not torch.equal(model(x), model(x))
    assert [b.drop_path.p for b in tiny(drop_path=0.1).cct.transformer.resblocks] == pytest.approx([0.0, 0.05, 0.1])


def test_drop_path_masks():
    torch.manual_seed(0)
    x = torch.ones(64, 5, 3)
    sample = DropPath(0.5, "sample").train()(x)
    assert set(sample.unique().tolist()) <= {0.0, 2.0}
    assert (sample == sample[:, :1, :1]).all()  # one draw per sample
    token = DropPath(0.5, "token").train()(x)
    assert (token == token[:1, :, :1]).all()  # one draw per position, shared by the batch
    with pytest.raises(ValueError, match="drop_path_mode"):
        DropPath(0.1, "row")


# --- registration -------------------------------------------------------------------------------------------------


def test_registered_for_patch_level_and_built_through_the_registry(registry):
    entry = registry.entries["aggregator"]["invpatch"]
    assert entry.meta["levels"] == ("patch",)
    resolved = registry.resolve("aggregator", "invpatch", dict(TINY))
    model = registry.build("aggregator", resolved, FeatureSpec("patch", C, 6, (4, 4)))
    assert isinstance(model, InvPatch) and model.frame_grid == (2, 3)
    assert model(torch.randn(2, 6, 16, C)).shape == (2, 1, C)
