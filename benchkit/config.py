"""Grid schema, parsing, overrides, expansion into cells and stable cell ids.

A grid YAML names a dataset, backbone(s), embedding level(s), aggregator(s), predictor(s), metrics, a protocol and a
training recipe. Any of the axes ``dataset``, ``backbone``, ``level``, ``aggregator``, ``predictor`` may be a list;
the cells are their Cartesian product, with ``zip`` (axes that advance together) and ``exclude`` (combinations to
drop). See docs/grid.md.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchkit.errors import ConfigError

AXES: tuple[str, ...] = ("dataset", "backbone", "level", "aggregator", "predictor")
COMPONENT_AXES: tuple[str, ...] = ("dataset", "backbone", "aggregator", "predictor")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Frozen):
    """A plugin (or preset) name plus keyword arguments; in YAML either ``mean`` or ``{name: gem, p: 3}``."""

    name: str = Field(min_length=1)
    label: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "kwargs" not in value:
            value = dict(value)
            reserved = {k: value.pop(k) for k in ("name", "label") if k in value}
            return {**reserved, "kwargs": value}
        return value

    @property
    def display(self) -> str:
        return self.label or self.name


class TrainConfig(_Frozen):
    """Training recipe (spec invpatch.md §6 for the paper's values)."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    warmup: float = Field(0.1, ge=0, lt=1, description="fraction of epochs with linear warm-up")
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_mode: Literal["linear", "reference"] = Field(
        "linear",
        description="'linear': lr ramps e/warmup_epochs (intended); 'reference': e/epochs as the authors' code "
        "(epoch 0 at lr 0), spec invpatch.md §6",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    grad_clip: float | None = Field(None, gt=0)
    drop_last: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ProtocolConfig(_Frozen):
    kind: Literal["group_kfold"] = "group_kfold"
    folds: int = Field(5, ge=2)
    seed: int = 0
    group_key: str | None = Field(None, description="dataset grouping key; None = the dataset's default")


class ReportConfig(_Frozen):
    decimals: int = Field(2, ge=0, le=6)
    columns: list[Literal["dataset", "backbone", "level", "aggregator", "predictor"]] | None = Field(
        None, description="identifying columns; default: level, aggregator, backbone plus any axis that varies"
    )


AxisName = Literal["dataset", "backbone", "level", "aggregator", "predictor"]
LevelName = Literal["frame", "patch"]


def _one_or_many(kind: type) -> Any:
    return Annotated[kind | list[kind], Field()]


class Grid(_Frozen):
    """A comparison grid: axes, protocol, training recipe, metrics, baselines and report options."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    task: Literal["inverse_dynamics"] = "inverse_dynamics"
    dataset: _one_or_many(Component)
    backbone: _one_or_many(Component)
    level: _one_or_many(LevelName) = "patch"  # type: ignore[assignment]
    aggregator: _one_or_many(Component)
    predictor: _one_or_many(Component)
    metrics: list[Component] = Field(min_length=1)
    protocol: ProtocolConfig = ProtocolConfig()
    train: TrainConfig = TrainConfig()
    baselines: list[Literal["random", "majority"]] = ["random", "majority"]
    zip: list[list[AxisName]] = Field(default_factory=list, description="axes whose lists advance together")
    exclude: list[dict[AxisName, str]] = Field(default_factory=list, description="combinations to drop (wildcards)")
    report: ReportConfig = ReportConfig()
    cache_dir: str | None = Field(None, description="feature cache folder; default $BENCHKIT_CACHE_DIR or ~/.cache")
    seed: int = 0

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, value: list[Component]) -> list[Component]:
        names = [m.display for m in value]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names repeat: {names}")
        return value

    def axis(self, name: str) -> list[Any]:
        value = getattr(self, name)
        return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: every axis fixed. ``id`` is a hash of its resolved configuration."""

    grid: Grid
    dataset: Component
    backbone: Component
    level: str
    aggregator: Component
    predictor: Component
    id: str = ""

    def axis_value(self, axis: str) -> str:
        value = getattr(self, axis)
        return value if isinstance(value, str) else value.display

    def labels(self) -> dict[str, str]:
        return {a: self.axis_value(a) for a in AXES}


# -- parsing ------------------------------------------------------------------------------------------------------


def expand_env(value: Any, where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {var} is not set (used in {where or 'the grid'})")

        return _ENV.sub(sub, value)
    return value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``train.epochs=3`` / ``aggregator=[mean,max]``: values are parsed as YAML and set at the dotted path."""
    raw = json.loads(json.dumps(raw))  # deep copy of plain data
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. train.epochs=3)")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({_first_line(e)})") from None
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping in the grid")
            node = child
        node[parts[-1]] = value
    return raw


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())


def load_raw(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or _first_line(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a grid must be a YAML mapping, got {type(data).__name__}")
    return data


def parse_grid(raw: dict[str, Any], source: str = "grid") -> Grid:
    raw = expand_env(raw)
    try:
        return Grid.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "list[", "str", "dict[")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        extra = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        got = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        raise ConfigError(f"{source}: {loc or 'grid'}: {msg}{shown}{extra}") from None


def load_grid(path: str | Path, overrides: Sequence[str] = ()) -> Grid:
    return parse_grid(apply_overrides(load_raw(path), overrides), str(path))


# -- expansion ----------------------------------------------------------------------------------------------------


def _matches(cell: Cell, selector: dict[str, str]) -> bool:
    return all(fnmatch.fnmatchcase(cell.axis_value(axis), str(pattern)) for axis, pattern in selector.items())


def parse_selectors(items: Iterable[str]) -> list[dict[str, str]]:
    """``--only aggregator=mean,level=patch`` → selectors; each item is one AND-ed selector."""
    selectors = []
    for item in items:
        sel = {}
        for part in item.split(","):
            axis, sep, pattern = part.partition("=")
            if not sep or axis.strip() not in AXES:
                raise ConfigError(f"--only {item!r}: expected AXIS=PATTERN with AXIS one of {', '.join(AXES)}")
            sel[axis.strip()] = pattern.strip()
        selectors.append(sel)
    return selectors


def expand(grid: Grid, only: Sequence[dict[str, str]] = ()) -> list[Cell]:
    """Cartesian product of the axes (zipped groups advance together), minus ``exclude``, filtered by ``only``."""
    groups: list[list[str]] = []
    zipped = set()
    for group in grid.zip:
        lengths = {a: len(grid.axis(a)) for a in group}
        if len(set(lengths.values())) != 1:
            raise ConfigError(f"zip {group}: axes have different lengths {lengths}")
        if zipped & set(group):
            raise ConfigError(f"zip {group}: an axis appears in two zip groups")
        zipped |= set(group)
        groups.append(list(group))
    groups += [[a] for a in AXES if a not in zipped]

    choices = [list(zip(*(grid.axis(a) for a in group), strict=True)) for group in groups]
    cells = []
    for combo in itertools.product(*choices):
        values: dict[str, Any] = {}
        for group, picked in zip(groups, combo, strict=True):
            values.update(zip(group, picked, strict=True))
        cell = Cell(grid=grid, **values)
        if any(_matches(cell, sel) for sel in grid.exclude):
            continue
        if only and not any(_matches(cell, sel) for sel in only):
            continue
        cells.append(cell)
    if not cells:
        raise ConfigError("the grid expands to no cells (check exclude/--only)")
    return cells


# -- identity -----------------------------------------------------------------------------------------------------


def stable_hash(payload: Any, length: int = 12) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
