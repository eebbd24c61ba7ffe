"""Hyper-parameter candidates (``{select: [...]}``) and the grid's ``selection:`` section (docs/grid.md).

Any ``train.*`` key except ``device`` and ``eval_batch_size``, and any top-level keyword of a cell's aggregator or
predictor, may list candidates in place: ``train: {lr: {select: [1.0e-3, 3.0e-4]}}``,
``aggregator: {name: lstm, hidden_size: {select: [64, 128]}}``. A cell's candidates are the product of its lists
(``selection.combine: zip`` advances them together instead). Inside every outer training fold an inner validation
split picks one (benchkit/run/selection.py); the test fold never takes part. The backbone and the dataset are not
selectable: they are the frozen input every candidate shares.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SELECT = "select"
MAX_CANDIDATES = 64
"""Candidates of one cell (the product of its lists): each one is a model trained on every fold."""
NOT_SELECTABLE = frozenset({"device", "eval_batch_size"})
"""Train keys that do not change what is learned."""
SELECTABLE_COMPONENTS = ("aggregator", "predictor")


class SelectionConfig(BaseModel):
    """How a cell with candidates picks one on validation data inside each training fold (docs/grid.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = Field(
        None, description="the grid metric maximised on validation (minimised when the metric is lower-is-better); "
        "default: the grid's first metric"
    )
    validation: float = Field(
        0.2, gt=0, lt=1, description="share of each training part's samples held out for validation, in whole "
        "groups (videos, episodes): a group is never split"
    )
    validation_label: str | None = Field(
        None, description="fixed_split only: validate on the dataset's own split with this label (e.g. val) instead "
        "of holding out part of the training split"
    )
    combine: Literal["product", "zip"] = Field(
        "product", description="candidates of several keys: every combination, or the lists advancing together"
    )
    refit: bool = Field(
        False, description="retrain the selected candidate on the whole training part before testing (false: test "
        "the selected model as validated; docs/decisions.md)"
    )
    vectorise: bool = Field(
        True, description="train (and decode on validation) the candidates that share an architecture as one "
        "vectorised model (torch.func.vmap); false: one after the other. Both give the same predictions up to float "
        "rounding"
    )


def is_select(value: Any) -> bool:
    return isinstance(value, dict) and SELECT in value


def choices(spec: Any, where: str) -> list[Any]:
    """The candidate list of one ``{select: [...]}``; ValueError with ``where`` when it is malformed."""
    if set(spec) != {SELECT}:
        extra = sorted(str(k) for k in spec if k != SELECT)
        raise ValueError(f"{where}: a candidate list is {{select: [values]}}; unexpected keys {extra}")
    values = spec[SELECT]
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: select needs a non-empty list of values")
    texts = [json.dumps(v, sort_keys=True, default=str) for v in values]
    if len(set(texts)) != len(texts):
        raise ValueError(f"{where}: select lists a value twice")
    for v in values:
        if _contains_select(v):
            raise ValueError(f"{where}: a candidate may not itself hold {{select: ...}}")
    return list(values)


def _contains_select(value: Any) -> bool:
    if is_select(value):
        return True
    if isinstance(value, dict):
        return any(_contains_select(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_select(v) for v in value)
    return False


def split_select(mapping: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``mapping`` with each ``{select: [...]}`` replaced by its first value, and ``{key: candidates}``.

    Only top-level values may be candidate lists; one nested deeper is a ValueError."""
    plain, found = dict(mapping), {}
    for key, value in mapping.items():
        if is_select(value):
            found[str(key)] = choices(value, f"{where}.{key}")
            plain[key] = found[str(key)][0]
        elif _contains_select(value):
            raise ValueError(f"{where}.{key}: {{select: ...}} must be the whole value of a top-level key")
    return plain, found


def combine(lists: dict[str, list[Any]], how: str) -> list[dict[str, Any]]:
    """Candidates (``{key: value}``) of named lists: their product, or zipped; ValueError beyond the limit."""
    if not lists:
        return []
    keys = list(lists)
    if how == "zip":
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"selection.combine: zip needs candidate lists of one length, got {lengths}")
        count = len(next(iter(lists.values())))
    else:
        count = 1
        for values in lists.values():
            count *= len(values)
    if count > MAX_CANDIDATES:
        shape = (" x " if how != "zip" else " zipped with ").join(str(len(v)) for v in lists.values())
        raise ValueError(f"{count} candidates per cell ({shape}), over the limit of {MAX_CANDIDATES}; shorten the "
                         "select lists")
    rows = list(zip(*lists.values(), strict=True)) if how == "zip" else list(itertools.product(*lists.values()))
    return [dict(zip(keys, row, strict=True)) for row in rows]


def short_key(key: str) -> str:
    """The column name of a selected value: ``train.lr`` -> ``lr*``, ``aggregator.hidden_size`` -> ``hidden_size*``."""
    return key.rsplit(".", 1)[-1] + "*"
