"""Rectified-flow noising, the Euler sampler's schedule and classifier-free guidance (specs/vedit.md §1).

The schedule reproduces diffusers' ``FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=s)`` after
``set_timesteps(steps)``, including its one quirk: the training grid is shifted once at construction, and its
smallest sigma (``shift(1 / 1000)``) is the end point of the inference ``linspace``, which is then shifted again.
With ``shift = 1`` this is the spec's ``linspace(1000, 1, steps)``; with ``shift = 3`` the last timestep is
``1000 · shift(shift(1/1000))`` (8.9 rather than 3.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TRAIN_TIMESTEPS = 1000


def shift_sigmas(sigmas: np.ndarray, shift: float) -> np.ndarray:
    """SD3's resolution shift ``s·σ / (1 + (s - 1)·σ)``; the identity at ``s = 1``."""
    return shift * sigmas / (1.0 + (shift - 1.0) * sigmas)


@dataclass(frozen=True)
class EulerSchedule:
    """``timesteps`` (``steps``, on the 0..1000 scale the timestep embedding receives) and ``sigmas``
    (``steps + 1``, the last one 0). Step ``i`` moves ``x`` by ``(sigmas[i + 1] - sigmas[i]) · v``."""

    timesteps: torch.Tensor
    sigmas: torch.Tensor

    @classmethod
    def build(cls, steps: int = 24, shift: float = 1.0, train_timesteps: int = TRAIN_TIMESTEPS) -> EulerSchedule:
        if steps < 1:
            raise ValueError(f"the sampler needs at least one step, got {steps}")
        if shift <= 0:
            raise ValueError(f"shift must be positive, got {shift}")
        # Construction: the training grid (float32, as diffusers keeps it), shifted once.
        grid = np.arange(train_timesteps, 0, -1, dtype=np.float32) / np.float32(train_timesteps)
        grid = shift_sigmas(grid, np.float32(shift)).astype(np.float32)
        sigma_max, sigma_min = float(grid[0]), float(grid[-1])
        # set_timesteps: a float64 linspace between the grid's ends, shifted (again), then float32.
        sigmas = np.linspace(sigma_max * train_timesteps, sigma_min * train_timesteps, steps) / train_timesteps
        sigmas = torch.from_numpy(shift_sigmas(sigmas, shift)).float()
        return cls(timesteps=sigmas * train_timesteps, sigmas=torch.cat([sigmas, sigmas.new_zeros(1)]))

    def __len__(self) -> int:
        return len(self.timesteps)

    def step(self, i: int, x: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """One Euler step from ``sigmas[i]`` to ``sigmas[i + 1]``."""
        return x + (self.sigmas[i + 1] - self.sigmas[i]).item() * velocity


def add_noise(z0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``z_σ = (1 - σ) z0 + σ ε`` with one ``σ`` per sample (broadcast over the remaining dimensions)."""
    sigma = sigma.reshape(-1, *([1] * (z0.dim() - 1)))
    return (1.0 - sigma) * z0 + sigma * noise


def guide(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``v_u + scale · (v_c - v_u)``; scale 1 is the conditional prediction."""
    if scale == 1.0:
        return conditional
    return unconditional + scale * (conditional - unconditional)
