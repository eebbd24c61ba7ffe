"""What a profile measures: the options of ``benchkit profile`` and of a grid's ``profile:`` section
(docs/profiling.md, "The grid's profile: section"). The fields are defined once, in the grid schema
(:class:`benchkit.grid.config.ProfileConfig`); this module adds what the profiler needs of torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

import torch
from pydantic import ValidationError

from benchkit.grid.config import ProfileConfig, ProfileDtype, validation_error

DTYPES = {name: getattr(torch, name) for name in get_args(ProfileDtype)}


class ProfileOptions(ProfileConfig):
    """:class:`~benchkit.grid.config.ProfileConfig` (its fields, defaults and checks) with torch's device and dtype.
    A bad value raises a one-line ``ConfigError`` naming ``profile.<field>``."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise validation_error(e, key=lambda loc: f"profile.{loc}" if loc else "profile") from None

    @classmethod
    def of(cls, config: ProfileConfig | Mapping[str, Any]) -> ProfileOptions:
        """Options from a grid's (validated) ``profile:`` section, or from a mapping of its fields."""
        if isinstance(config, cls):
            return config
        return cls(**(config.model_dump() if isinstance(config, ProfileConfig) else config))

    def torch_device(self) -> torch.device:
        from benchkit.learn.devices import resolve_device

        return resolve_device(self.device, "profile.device")

    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]
