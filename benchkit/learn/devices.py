"""The one device resolver: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` → a ``torch.device``, or one clear line.

Training (``train.device``), profiling (``profile.device``, ``--device``) and backbones (``device:``) all resolve
their device here, so a device that is not there fails the same way everywhere: a :class:`ConfigError` naming the
setting. torch is imported on the first call, not with this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchkit.errors import ConfigError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str, what: str = "device") -> torch.device:
    """``name`` as a device; ``auto`` is CUDA when present, else the CPU. ``what`` names the setting in errors
    (``train.device``, ``backbone 'hf': device``)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{what} {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} is {name!r} but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{what} is {name!r} but only {torch.cuda.device_count()} CUDA devices are visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{what} is {name!r} but no MPS device is available")
    return device
