"""The sampler, guidance, RoPE and timestep embedding of VEDiT (specs/vedit.md §1), against values computed here
independently of the implementation (diffusers and torchtune are not installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from benchkit_predictors._adaln import timestep_sinusoid
from benchkit_predictors._flow_matching import EulerSchedule, add_noise, guide
from benchkit_predictors._rope import RotaryEmbedding


def diffusers_flow_match_euler(steps: int, shift: float, n_train: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``FlowMatchEulerDiscreteScheduler(shift=shift).set_timesteps(steps)``, step by step as diffusers does it:
    float32 training grid ``linspace(1, N, N)[::-1] / N`` shifted once; ``sigma_max / sigma_min`` its ends; a
    float64 ``linspace(sigma_max·N, sigma_min·N, steps) / N`` shifted again; float32; timesteps ``σ·N``; σ 0
    appended."""
    grid = np.linspace(1, n_train, n_train, dtype=np.float32)[::-1].copy() / np.float32(n_train)
    grid = (np.float32(shift) * grid / (np.float32(1) + np.float32(shift - 1) * grid)).astype(np.float32)
    sigma_max, sigma_min = float(grid[0]), float(grid[-1])
    sigmas = [sigma_max * n_train + i * (sigma_min - sigma_max) * n_train / (steps - 1) for i in range(steps)]
    sigmas = [s / n_train for s in sigmas]
    sigmas = np.array([shift * s / (1 + (shift - 1) * s) for s in sigmas], dtype=np.float32)
    return sigmas * np.float32(n_train), np.append(sigmas, np.float32(0.0))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_schedule_equals_diffusers_flow_match_euler_24_steps(shift):
    timesteps, sigmas = diffusers_flow_match_euler(24, shift)
    schedule = EulerSchedule.build(24, shift)
    assert len(schedule) == 24 and schedule.sigmas.shape == (25,)
    np.testing.assert_allclose(schedule.timesteps.numpy(), timesteps, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(schedule.sigmas.numpy(), sigmas, rtol=1e-6, atol=1e-7)
    assert schedule.sigmas[0] == 1.0 and schedule.sigmas[-1] == 0.0


def test_schedule_values_spelled_out():
    unshifted = EulerSchedule.build(24, 1.0)
    np.testing.assert_allclose(unshifted.timesteps.numpy(), np.linspace(1000, 1, 24), rtol=1e-6)  # the spec's form
    shifted = EulerSchedule.build(24, 3.0)
    # diffusers' double shift of the end point: 1000 · s(s(0.001)) with s(x) = 3x / (1 + 2x).
    s = lambda x: 3 * x / (1 + 2 * x)  # noqa: E731
    assert shifted.timesteps[-1].item() == pytest.approx(1000 * s(s(0.001)), rel=1e-5)
    assert shifted.timesteps[-1].item() == pytest.approx(8.9286, abs=1e-3)
    assert torch.all(shifted.sigmas[1:-1] > unshifted.sigmas[1:-1])  # shift > 1 spends more steps at high noise


def test_euler_loop_with_the_true_velocity_lands_on_the_data():
    """On the straight path z_σ = (1-σ) z0 + σ ε the velocity is ε - z0 everywhere; the steps sum to σ: 1 → 0."""
    g = torch.Generator().manual_seed(0)
    z0, eps = torch.randn(3, 4, 8, generator=g), torch.randn(3, 4, 8, generator=g)
    for shift in (1.0, 3.0):
        schedule, x = EulerSchedule.build(24, shift), eps.clone()
        for i in range(len(schedule)):
            sigma = schedule.sigmas[i].expand(3)
            torch.testing.assert_close(x, add_noise(z0, eps, sigma), atol=1e-5, rtol=1e-5)
            x = schedule.step(i, x, eps - z0)
        torch.testing.assert_close(x, z0, atol=1e-5, rtol=1e-5)


def test_add_noise_endpoints_and_per_sample_sigma():
    z0, eps = torch.ones(2, 3, 4), torch.full((2, 3, 4), -1.0)
    out = add_noise(z0, eps, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[0], z0[0])
    torch.testing.assert_close(out[1], eps[1])
    torch.testing.assert_close(add_noise(z0, eps, torch.tensor([0.25, 0.25])), torch.full((2, 3, 4), 0.5))


def test_guidance_formula_and_scale_one_is_conditional():
    g = torch.Generator().manual_seed(1)
    c, u = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    assert guide(c, u, 1.0) is c
    torch.testing.assert_close(guide(c, u, 7.0), u + 7.0 * (c - u))
    torch.testing.assert_close(guide(c, u, 0.0), u)


def _torchtune_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Reference: interleaved pairs as complex numbers multiplied by exp(i · pos · base^(-2j/d)); x (B, N, H, d)."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.polar(torch.ones(positions.shape[-1], d // 2, dtype=torch.float64), positions[0, :, None] * theta)
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(pairs * rot[None, :, None]).flatten(-2).float()


def test_rope_matches_torchtune_semantics():
    x = torch.randn(2, 5, 3, 8)  # (B, N, H, d) as torchtune takes it
    positions = torch.tensor([[7, 0, 1, 2, 3]])
    ours = RotaryEmbedding(8)(x.transpose(1, 2), positions).transpose(1, 2)
    torch.testing.assert_close(ours, _torchtune_rope(x, positions.double()), atol=1e-5, rtol=1e-5)


def test_rope_dot_products_depend_only_on_position_differences():
    rope = RotaryEmbedding(16)
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)

    def score(pq: int, pk: int) -> float:
        return (rope(q, torch.tensor([[pq]])) * rope(k, torch.tensor([[pk]]))).sum().item()

    for delta in (0, 1, 3, -2):
        values = [score(p + delta, p) for p in (0, 4, 9, 25)]
        assert max(values) - min(values) < 1e-4, (delta, values)
    assert abs(score(1, 0) - score(3, 0)) > 1e-3  # and the difference does matter
    rotated = rope(q, torch.tensor([[5]]))
    torch.testing.assert_close(rotated.norm(), q.norm())  # a rotation
    torch.testing.assert_close(rope(q, torch.tensor([[0]])), q)


def test_timestep_sinusoid_is_sd3s():
    t = torch.tensor([0.0, 500.0, 1000.0])
    emb = timestep_sinusoid(t)
    assert emb.shape == (3, 256)
    i = 5
    freq = math.exp(-math.log(10000) * i / 128)
    assert emb[1, i].item() == pytest.approx(math.cos(500 * freq), abs=1e-5)  # cos first
    assert emb[1, 128 + i].item() == pytest.approx(math.sin(500 * freq), abs=1e-5)
    torch.testing.assert_close(emb[0], torch.cat([torch.ones(128), torch.zeros(128)]))
