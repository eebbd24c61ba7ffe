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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from benchkit import yaml_safe
from benchkit.errors import ConfigError
from benchkit.grid.selection import NOT_SELECTABLE, SELECT, SelectionConfig, split_select
from benchkit.yaml_safe import short

AXES: tuple[str, ...] = ("dataset", "backbone", "level", "aggregator", "predictor")
SWEEP_AXES: tuple[str, ...] = ("train_fraction", "frames")
COMPONENT_AXES: tuple[str, ...] = ("dataset", "backbone", "aggregator", "predictor")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MAX_CELLS = 10_000
"""Cells of a grid before exclude/--only (the papers' largest grids: ~100)."""
MAX_CELL_WORK = 1_000_000
"""Cells x (keyword nodes of a cell's components + exclude/only selectors): what planning walks and hashes."""
MAX_ENV_CHARS = 4 * yaml_safe.MAX_BYTES
"""Characters that ``${VAR}`` expansion may add to a grid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _component_forms(schema: dict[str, Any]) -> None:
    """JSON Schema of what the YAML may hold: ``mean``, or ``{name: gem, p: 3}`` (keywords beside ``name``)."""
    name, label = schema["properties"]["name"], schema["properties"]["label"]
    title, description = schema.get("title"), schema.get("description")
    schema.clear()
    schema.update(title=title, description=description, anyOf=[
        {"type": "string", "minLength": 1},
        {"type": "object", "properties": {"name": name, "label": label}, "required": ["name"],
         "additionalProperties": True},
    ])


class Component(_Frozen):
    """A plugin (or preset) name plus keyword arguments; in YAML either ``mean`` or ``{name: gem, p: 3}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_component_forms)

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


def _selectable(schema: dict[str, Any]) -> None:
    """JSON Schema: every selectable train key also accepts ``{select: [values]}`` (docs/grid.md)."""
    for key, prop in schema.get("properties", {}).items():
        if key in NOT_SELECTABLE:
            continue
        description = prop.pop("description", None)
        choice = {"type": "object", "properties": {SELECT: {"type": "array", "minItems": 1, "items": prop}},
                  "required": [SELECT], "additionalProperties": False}
        schema["properties"][key] = {"anyOf": [prop, choice], **({"description": description} if description else {}),
                                     **({"default": prop.pop("default")} if "default" in prop else {})}


class TrainConfig(_Frozen):
    """Training recipe (spec invpatch.md §6 for the paper's values). Any key but ``device`` and ``eval_batch_size``
    may list candidates, ``{select: [values]}``, selected on validation data (docs/grid.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_selectable)

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
    standardize: bool = Field(
        False,
        description="z-score every feature dimension with the training fold's mean and std before the aggregator "
        "(benchkit's option; the references feed raw features, docs/decisions.md)",
    )


class ProtocolConfig(_Frozen):
    """How samples are split into (train, test) pairs; every cell of a grid uses the same splits.

    ``group_kfold``: ``folds`` folds, no group in two folds (the papers' 5-fold CV). ``repeated_split``: ``repeats``
    random group-level train/test splits with ``test_fraction`` of the samples in test (the papers' sensitivity
    analyses: 3 x 80/20). ``train_fraction_of`` says what a ``sweep.train_fraction`` value is a fraction of.
    """

    kind: Literal["group_kfold", "repeated_split", "fixed_split"] = "group_kfold"
    folds: int = Field(5, ge=2, description="group_kfold: number of folds")
    repeats: int = Field(3, ge=1, description="repeated_split: number of random splits")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="repeated_split: share of samples in test")
    seed: int = 0
    group_key: str | None = Field(None, description="dataset grouping key; None = the dataset's default")
    train_label: str = Field("train", description="fixed_split: the split key's value of training samples")
    test_label: str = Field("test", description="fixed_split: the split key's value of test samples (Ego4D: val)")
    train_fraction_of: Literal["train", "dataset"] = Field(
        "train", description="sweep.train_fraction is a fraction of the training part ('train') or of all samples "
        "('dataset', the InvPatch paper's wording: 80% of the data = the whole training part of an 80/20 split)"
    )

    @property
    def splits(self) -> int:
        """Number of (train, test) pairs: the folds, or the repeats."""
        return {"group_kfold": self.folds, "repeated_split": self.repeats, "fixed_split": 1}[self.kind]

    @property
    def unit(self) -> str:
        return "folds" if self.kind == "group_kfold" else "splits" if self.kind == "repeated_split" else "split"


class DecodeConfig(_Frozen):
    """How test predictions are decoded beyond the predictor's greedy ``predict`` (spec vedit.md §3)."""

    candidates: int = Field(
        1, ge=1, description="K sequences per sample from predictor.candidates(prefix, K); metrics registered with "
        "candidates=True (ED@Z) score the best of them (Ego4D LTA: 5)"
    )
    viterbi: bool = Field(
        False, description="decode with Viterbi over the training transition matrix (procedure planning, SCHEMA "
        "protocol); needs a predictor with logits() and a dataset with step_sequences()"
    )


class SweepConfig(_Frozen):
    """Sensitivity sweeps (InvPatch Figs. 4-5): every value is a point, and every point is a cell of its own."""

    train_fraction: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=list, description="subsample the training part of every split (test part fixed)"
    )
    frames: list[Annotated[int, Field(ge=2)]] = Field(
        default_factory=list, description="frames per window, passed to the dataset as its `frames` keyword"
    )

    def axes(self) -> list[str]:
        return [name for name in SWEEP_AXES if getattr(self, name)]


ProfileDtype = Literal["float32", "bfloat16", "float16"]


class ProfileConfig(_Frozen):
    """What a profile measures: the grid's ``profile:`` section, and the measurement options of ``benchkit profile``,
    whose flags are generated from these fields (docs/profiling.md). Types are strict, as in a hand-checked section:
    ``batch: "8"`` or ``flops: 1`` is an error, not converted. ``benchkit.profiling.ProfileOptions`` adds torch."""

    model_config = ConfigDict(strict=True)

    flops: bool = Field(True, description="count FLOPs (MACs beside them) per phase")
    training: bool = Field(True, description="count the training phases too, not only inference")
    latency: bool = Field(
        True, description="time the inference path (aggregate, then decode) at batch 1 and at `batch`, and the "
        "backbone on one clip"
    )
    memory: bool = Field(True, description="peak memory of the latency runs (measured only with latency)")
    backbone: bool = Field(True, description="include the backbone phase (once per clip) when there is a backbone")
    reference: bool = Field(
        True, description="also count the predictor's reference decoding loop (no KV cache) when it has one"
    )
    batch: int = Field(64, ge=1, description="batch size of the throughput run")
    device: str = Field(
        "cpu", pattern=r"^(cpu|auto|cuda(:[0-9]+)?)$", description="the device: cpu, cuda[:n] or auto"
    )
    dtype: ProfileDtype = Field(
        "float32", description="latency and memory under torch.autocast to this type (FLOPs do not depend on it)"
    )
    actions: int | None = Field(
        None, ge=1, description="actions per decoded sequence; unset (null): the data's longest"
    )
    min_run_time: float = Field(1.0, gt=0, description="seconds of timed runs per latency figure")
    warmup: int = Field(2, ge=0, description="untimed calls before the timed runs")
    seed: int = Field(0, description="random weights and inputs")


LabelName = Literal["dataset", "backbone", "level", "aggregator", "predictor", "train_fraction", "frames"]
ProfileColumn = Literal[
    "params_M", "trainable_params_M", "frozen_params_M", "gflops", "gmacs", "gflops_with_backbone",
    "backbone_gflops", "train_gflops", "latency_ms", "latency_iqr_ms", "throughput", "peak_mem_mb",
]


class ReportConfig(_Frozen):
    """How leaderboards and figures are laid out (docs/reports.md)."""

    decimals: int = Field(2, ge=0, le=6)
    columns: list[LabelName | ProfileColumn] | None = Field(
        None, description="identifying columns; default: the row keys, the group column and any axis that varies"
    )
    group_by: LabelName | Literal["none"] | None = Field(
        "backbone", description="group column (best per group in bold, overall best bold and underlined)"
    )
    rows: list[LabelName] = Field(["level", "aggregator"], description="row keys within a group")
    profile_columns: list[ProfileColumn] = Field(
        default_factory=list, description="extra columns from each cell's profile.json (grid `profile:`)"
    )
    figures: list[Literal["sensitivity", "confusion", "cost", "selection"]] = ["sensitivity", "confusion", "cost",
                                                                               "selection"]
    figure_metric: str | None = Field(None, description="metric of the figures; default: the grid's first")
    confusion: Literal["best", "all"] | list[str] = Field(
        "best", description="confusion matrices of the best complete cell per dataset, of all, or of selectors"
    )
    compare: list[tuple[str, str]] = Field(
        default_factory=list, description="pairs of cell selectors for paired t-tests over the same folds"
    )


AxisName = Literal["dataset", "backbone", "level", "aggregator", "predictor"]
SweepName = Literal["train_fraction", "frames"]
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
    baselines: list[Literal["random", "random-paper", "majority"]] = Field(
        ["random", "majority"], description="random-paper: one token more than the references, as the paper's "
        "random baseline (16 tokens against 15 transitions, 13.40%); see docs/metrics.md"
    )
    zip: list[list[AxisName]] = Field(default_factory=list, description="axes whose lists advance together")
    exclude: list[dict[AxisName | SweepName, str | float]] = Field(
        default_factory=list, description="combinations to drop (wildcards)"
    )
    sweep: SweepConfig = SweepConfig()
    decode: DecodeConfig = DecodeConfig()
    profile: ProfileConfig | None = Field(
        None, description="profile each cell once (parameters, FLOPs, latency, memory): true (the defaults), "
        "false (none) or options; docs/profiling.md"
    )
    report: ReportConfig = ReportConfig()
    executor: Component = Field(
        Component(name="local"), description="where cells run: local (in-process), process, ray; see docs/scaling.md"
    )
    retries: int = Field(0, ge=0, description="extra attempts for a fold that raises before it is recorded as failed")
    fail_fast: bool = Field(False, description="stop the grid at the first failed fold")
    cache_dir: str | None = Field(None, description="feature cache folder; default $BENCHKIT_CACHE_DIR or ~/.cache")
    seed: int = 0
    selection: SelectionConfig | None = Field(
        None, description="how cells with candidates ({select: [...]} in train or an aggregator/predictor keyword) "
        "pick one on validation data inside each training fold; default settings when absent; docs/grid.md"
    )
    _train_choices: dict[str, list[Any]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _train_candidates(cls, value: Any, handler: Any) -> Grid:
        """``train.<key>: {select: [...]}``: the recipe holds the first value, ``train_choices`` every candidate.
        Each candidate is checked as a recipe of its own, so a bad one fails before any fold runs."""
        train, found = value.get("train") if isinstance(value, dict) else None, {}
        if isinstance(train, dict):
            train, found = split_select(train, "train")
            for key, values in found.items():
                if key in NOT_SELECTABLE:
                    raise ValueError(f"train.{key}: not selectable (it does not change what is learned)")
                for v in values:
                    try:
                        TrainConfig.model_validate({**train, key: v})
                    except ValidationError as e:
                        raise ValueError(f"train.{key}: candidate {short(v)}: {e.errors()[0]['msg']}") from None
            value = {**value, "train": train}
        grid = handler(value)
        if found:
            grid._train_choices = found
        return grid

    @model_serializer(mode="wrap")
    def _dump_candidates(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self._train_choices and isinstance(data.get("train"), dict):
            data["train"] = {**data["train"], **{k: {SELECT: list(v)} for k, v in self._train_choices.items()}}
        return data

    @property
    def train_choices(self) -> dict[str, list[Any]]:
        """``{train key: candidates}`` of the keys given as ``{select: [...]}`` (empty without selection)."""
        return dict(self._train_choices)

    @property
    def selection_settings(self) -> SelectionConfig:
        return self.selection or SelectionConfig()

    @field_validator("profile", mode="before", json_schema_input_type=bool | ProfileConfig | None)
    @classmethod
    def _profile_switch(cls, value: Any) -> Any:
        """``profile: true`` is the defaults, ``false`` (like absent) no profile."""
        if value is True:
            return {}
        if value is False:
            return None
        if value is not None and not isinstance(value, dict | ProfileConfig):
            raise ValueError("expected true, false or a mapping of options")
        return value

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
    train_fraction: float | None = None
    frames: int | None = None

    def axis_value(self, axis: str) -> str:
        value = getattr(self, axis)
        if value is None or isinstance(value, str):
            return "" if value is None else value
        return value.display if isinstance(value, Component) else f"{value:g}"

    def labels(self) -> dict[str, Any]:
        """Display values of the axes, plus the sweep values (numbers) of a sweep point."""
        labels: dict[str, Any] = {a: self.axis_value(a) for a in AXES}
        labels.update({s: getattr(self, s) for s in self.grid.sweep.axes()})
        return labels


# -- parsing ------------------------------------------------------------------------------------------------------


def expand_env(value: Any, where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree (adding at most
    ``MAX_ENV_CHARS`` characters in all)."""
    budget = [MAX_ENV_CHARS]

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:

            def sub(m: re.Match[str]) -> str:
                var, default = m.group(1), m.group(2)
                text = os.environ.get(var, default)
                if text is None:
                    raise ConfigError(f"environment variable {yaml_safe.one_line(var, 80)} is not set (used in "
                                      f"{yaml_safe.one_line(where, 120) or 'the grid'})")
                budget[0] -= len(text)
                if budget[0] < 0:
                    raise ConfigError(f"${{VAR}} expansion adds more than {MAX_ENV_CHARS:,} characters to the grid "
                                      f"(at {yaml_safe.one_line(where, 120)})")
                return text

            return _ENV.sub(sub, value)
        return value

    return walk(value, where)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``train.epochs=3`` / ``aggregator=[mean,max]``: values are parsed as YAML and set at the dotted path.

    Values are read within the limits of a grid file (benchkit/yaml_safe.py), all overrides together at most
    ``MAX_BYTES`` characters and a key at most ``MAX_DEPTH`` parts."""
    raw = json.loads(json.dumps(raw))  # deep copy of plain data
    if sum(len(item) for item in overrides) > yaml_safe.MAX_BYTES:
        raise ConfigError(f"overrides: more than {yaml_safe.MAX_BYTES // 1024} KiB of KEY=VALUE text")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {short(item)} is not KEY=VALUE (e.g. train.epochs=3)")
        parts = key.strip().split(".")
        if len(parts) > yaml_safe.MAX_DEPTH:
            raise ConfigError(f"override {short(item)}: key has more than {yaml_safe.MAX_DEPTH} parts")
        value = yaml_safe.loads(text, f"override {short(item, 60)}") if text.strip() else ""
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {short(item)}: {short(part)} is not a mapping in the grid")
            node = child
        node[parts[-1]] = value
    return raw


def load_raw(path: str | Path) -> dict[str, Any]:
    """The grid file's mapping, read within the limits of benchkit/yaml_safe.py (size, nodes, depth, types)."""
    data = yaml_safe.load_file(path, "grid file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a grid must be a YAML mapping, got {type(data).__name__}")
    return data


def parse_grid(raw: dict[str, Any], source: str = "grid") -> Grid:
    yaml_safe.check_tree(raw, source)  # overrides and API callers bypass the loader's limits
    raw = expand_env(raw)
    try:
        return Grid.model_validate(raw)
    except ValidationError as e:
        raise validation_error(e, source) from None


def validation_error(
    error: ValidationError, source: str | None = None, key: Callable[[str], str] = lambda loc: loc or "grid"
) -> ConfigError:
    """The first of pydantic's errors as one line, ``[source: ]key: message (got value) (+n more)``; ``key`` names
    the dotted location (``profile.batch``; ``benchkit profile`` names its flag)."""
    err = error.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "list[", "str", "dict[")))
    msg = yaml_safe.one_line(err["msg"], 200)
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        if not loc:  # a check of the whole grid names its key in the message
            return ConfigError(f"{source + ': ' if source else ''}{msg}")
    where = yaml_safe.one_line(key(loc), 160)
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    extra = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    got = err.get("input")
    shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {short(got)})"
    return ConfigError(f"{source + ': ' if source else ''}{where}: {msg}{shown}{extra}")


def load_grid(path: str | Path, overrides: Sequence[str] = ()) -> Grid:
    return parse_grid(apply_overrides(load_raw(path), overrides), str(path))


# -- expansion ----------------------------------------------------------------------------------------------------


def _matches(cell: Cell, selector: dict[str, Any]) -> bool:
    def text(pattern: Any) -> str:  # numbers as the labels show them: 1.0 -> "1"
        return f"{pattern:g}" if isinstance(pattern, int | float) and not isinstance(pattern, bool) else str(pattern)

    return all(fnmatch.fnmatchcase(cell.axis_value(axis), text(pattern)) for axis, pattern in selector.items())


def parse_selectors(items: Iterable[str]) -> list[dict[str, str]]:
    """``--only aggregator=mean,level=patch`` → selectors; each item is one AND-ed selector."""
    selectors = []
    for item in items:
        sel = {}
        for part in item.split(","):
            axis, sep, pattern = part.partition("=")
            if not sep or axis.strip() not in (*AXES, *SWEEP_AXES):
                raise ConfigError(
                    f"--only {item!r}: expected AXIS=PATTERN with AXIS one of {', '.join((*AXES, *SWEEP_AXES))}"
                )
            sel[axis.strip()] = pattern.strip()
        selectors.append(sel)
    return selectors


def expand(grid: Grid, only: Sequence[dict[str, str]] = ()) -> list[Cell]:
    """Cartesian product of the axes (zipped groups advance together), minus ``exclude``, filtered by ``only``."""
    empty = [a for a in AXES if not grid.axis(a)]
    if empty:
        raise ConfigError(f"{empty[0]}: an empty list (give at least one value)")
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
    sweeps = [[(name, v) for v in getattr(grid.sweep, name)] for name in grid.sweep.axes()]
    _check_size(grid, [*choices, *sweeps], only)
    cells = []
    for combo in itertools.product(*choices, *sweeps):
        values: dict[str, Any] = {}
        for group, picked in zip(groups, combo[: len(groups)], strict=True):
            values.update(zip(group, picked, strict=True))
        values.update(dict(combo[len(groups) :]))
        cell = Cell(grid=grid, **values)
        if any(_matches(cell, sel) for sel in grid.exclude):
            continue
        if only and not any(_matches(cell, sel) for sel in only):
            continue
        cells.append(cell)
    if not cells:
        raise ConfigError("the grid expands to no cells (check exclude/--only)")
    return cells


def _check_size(grid: Grid, lists: list[list[Any]], only: Sequence[dict[str, str]]) -> None:
    """Refuse a grid whose cells (before exclude/--only) or planning work exceed ``MAX_CELLS`` / ``MAX_CELL_WORK``
    before any cell is built: a few hundred list entries multiply into billions of cells."""
    cells = 1
    for values in lists:
        cells *= len(values)
    if cells > MAX_CELLS:
        raise ConfigError(f"the grid expands to {cells:,} cells before exclude/--only, over the limit of "
                          f"{MAX_CELLS:,}; split it into several grids")

    def nodes(value: Any) -> int:
        count, stack = 0, [value]
        while stack:
            item = stack.pop()
            count += 1
            stack.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else ())
        return count

    per_cell = len(grid.exclude) + len(only) + sum(
        max((nodes(c.kwargs) for c in grid.axis(axis)), default=0) for axis in COMPONENT_AXES
    )
    if cells * per_cell > MAX_CELL_WORK:
        raise ConfigError(f"the grid expands to {cells:,} cells of ~{per_cell:,} keyword and selector nodes each, "
                          f"over the limit of {MAX_CELL_WORK:,} in all; split it or shorten its lists")


# -- identity -----------------------------------------------------------------------------------------------------


def stable_hash(payload: Any, length: int = 12) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
