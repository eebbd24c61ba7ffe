"""What a profile measures: the options of ``benchkit profile`` and of a grid's ``profile:`` section
(docs/profiling.md, "Grid section")."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from benchkit.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ProfileOptions:
    """``flops``: count FLOPs per phase (``training``: the training phases too, not only inference).
    ``latency``: time the deployed inference path (aggregate, then decode) at batch 1 and at ``batch``, and the
    backbone on one clip. ``memory``: peak memory of those runs.
    ``backbone``: include the backbone (once per clip) when one is given. ``device``: ``cpu``, ``cuda[:n]`` or
    ``auto``. ``dtype``: latency and memory under ``torch.autocast`` to this type (FLOPs do not depend on it).
    ``actions``: actions per decoded sequence (default: the data's longest, or 16 on the command line).
    ``reference``: also count the predictor's reference decoding loop (no KV cache) when it has one.
    ``min_run_time``: seconds of timed runs per latency figure after ``warmup`` untimed calls. ``seed``: random
    weights and inputs."""

    flops: bool = True
    training: bool = True
    latency: bool = True
    memory: bool = True
    backbone: bool = True
    reference: bool = True
    batch: int = 64
    device: str = "cpu"
    dtype: str = "float32"
    actions: int | None = None
    min_run_time: float = 1.0
    warmup: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"profile.batch must be >= 1, got {self.batch}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"profile.dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.actions is not None and self.actions < 1:
            raise ConfigError(f"profile.actions must be >= 1, got {self.actions}")
        if self.min_run_time <= 0 or self.warmup < 0:
            raise ConfigError("profile.min_run_time must be > 0 and profile.warmup >= 0")
        if not (self.device in ("cpu", "auto") or self.device.split(":")[0] == "cuda"):
            raise ConfigError(f"profile.device must be cpu, cuda[:n] or auto, got {self.device!r}")

    @classmethod
    def from_config(cls, value: bool | Mapping[str, Any] | ProfileOptions | None) -> ProfileOptions | None:
        """A grid's ``profile:`` value: absent or ``false`` → ``None`` (no profile); ``true`` → the defaults;
        a mapping of the fields above. Unknown keys and wrong types raise a one-line ``ConfigError``."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"profile: expected true, false or a mapping of options, got {value!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ConfigError(f"profile: unknown option {unknown[0]!r}; options are {', '.join(fields)}")
        for key, v in value.items():
            default = fields[key].default
            kind = type(default) if default is not None else int
            ok = isinstance(v, kind) or (kind is float and isinstance(v, int)) or (default is None and v is None)
            if not ok or (kind is not bool and isinstance(v, bool)):
                raise ConfigError(f"profile.{key}: expected {kind.__name__}, got {v!r}")
        return cls(**value)

    def torch_device(self) -> torch.device:
        from benchkit.devices import resolve_device

        return resolve_device(self.device, "profile.device")

    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]
