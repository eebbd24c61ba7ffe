"""The ``benchkit`` command: run, validate, ls, plugins, report, schema, cache, new, and commands from plugins.

A user mistake (``BenchkitError``) prints one line, ``error: ...``, and exits with code 2.
"""

from __future__ import annotations

import json
import logging
import sys
import types
import typing
from pathlib import Path

import click

from benchkit.errors import BenchkitError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # one clear line and exit 2 for every user mistake
        try:
            return super().invoke(ctx)
        except BenchkitError as e:  # one line even when the message quotes a user's multi-line or huge value
            message = " ".join(str(e).splitlines())
            click.echo(f"error: {message if len(message) <= 2000 else message[:1999] + '…'}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: the folds stored so far are kept; run the same command to resume", err=True)
            ctx.exit(130)

    # Commands from plugins' ``benchkit_commands`` hooks; plugins load only for a name that is not built in.
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands().get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def _plugin_commands(self) -> dict[str, click.Command]:
        from benchkit.plugin_cli import plugin_commands

        return {name: cmd for name, (_, cmd) in plugin_commands(_registry(), frozenset(self.commands)).items()}


def _registry():
    from benchkit.registry.plugins import get_registry

    return get_registry()


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    log = logging.getLogger("benchkit")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING)
    log.propagate = False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="benchkit")
def main() -> None:
    """benchkit: compose backbones, aggregators, predictors and datasets into benchmark grids."""
    _setup_logging()


def _load(grid_path: str, overrides: tuple[str, ...]):
    from benchkit.grid.config import apply_overrides, load_raw, parse_grid

    raw = apply_overrides(load_raw(grid_path), overrides)
    return raw, parse_grid(raw, grid_path)


@main.command()
@click.argument("grid", type=click.Path())  # a directory or FIFO: one `error:` line from the loader
@click.argument("overrides", nargs=-1)
@click.option("--run-dir", type=click.Path(file_okay=False), help="Default: runs/<grid name>.")
@click.option("--only", multiple=True, metavar="AXIS=PATTERN[,AXIS=PATTERN]", help="Run only matching cells.")
@click.option("--executor", metavar="NAME", help="local, process, ray (default: the grid's `executor:`, else local).")
@click.option("--fail-fast", is_flag=True, default=None, help="Stop at the first failed fold.")
@click.option("--retries", type=click.IntRange(min=0), help="Extra attempts for a failing fold.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def run(grid: str, overrides: tuple[str, ...], run_dir: str | None, only: tuple[str, ...], executor: str | None,
        fail_fast: bool | None, retries: int | None, no_progress: bool) -> None:
    """Run GRID (resuming what is stored) and write its leaderboard. OVERRIDES: key.path=value.

    Exit codes: 0 all folds stored, 1 some folds failed (recorded in the run directory), 2 bad input,
    130 interrupted."""
    from benchkit.grid.config import parse_selectors
    from benchkit.run.runner import run_grid

    before = [f"executor={{name: {executor}}}"] if executor else []  # then executor.KEY=VALUE overrides apply
    after = ["fail_fast=true"] if fail_fast else []
    after += [f"retries={retries}"] if retries is not None else []
    raw, parsed = _load(grid, (*before, *overrides, *after))
    summary = run_grid(
        parsed,
        run_dir or Path("runs") / parsed.name,
        _registry(),
        only=parse_selectors(only),
        raw_grid=raw,
        say=lambda m: click.echo(m, err=True),
        progress=not no_progress,
    )
    click.echo(summary.leaderboard)
    click.echo(
        f"{summary.folds_run} folds run, {summary.folds_stored} reused, {summary.seconds:.1f} s; "
        f"leaderboard: {summary.run_dir / 'leaderboard.md'}",
        err=True,
    )
    if summary.failed:
        cells = {f["cell"] for f in summary.failed}
        click.echo(f"error: {len(summary.failed)} folds failed in {len(cells)} cells (errors and tracebacks in "
                   f"{summary.run_dir}/cells/<id>/fold-<k>.error.json); rerun to retry them", err=True)
        sys.exit(1)


@main.command()
@click.argument("grid", type=click.Path())  # a directory or FIFO: one `error:` line from the loader
@click.argument("overrides", nargs=-1)
@click.option("--only", multiple=True, metavar="AXIS=PATTERN")
def validate(grid: str, overrides: tuple[str, ...], only: tuple[str, ...]) -> None:
    """Check GRID without running it: schema, plugin names, keyword arguments, levels, data paths."""
    from benchkit.grid.config import parse_selectors
    from benchkit.grid.plan import plan

    _, parsed = _load(grid, overrides)
    cells = plan(parsed, _registry(), parse_selectors(only))
    click.echo(f"{grid}: ok, {len(cells)} cells x {parsed.protocol.splits} {parsed.protocol.unit}")
    for pc in cells:
        labels = " ".join(f"{k}={v}" for k, v in pc.cell.labels().items())
        keys = ", ".join(pc.config["selection"]["candidates"]) if pc.variants else ""
        selecting = f"  [{len(pc.variants)} candidates: {keys}]" if pc.variants else ""
        click.echo(f"  {pc.id}  {labels}{selecting}")


@main.command(name="ls")
@click.argument("kind", required=False)
@click.argument("pattern", default="*")
def ls(kind: str | None, pattern: str) -> None:
    """List registered plugins and presets, optionally of one KIND, matching a wildcard PATTERN."""
    from benchkit.registry.plugins import KINDS

    if kind and kind not in KINDS:
        if any(ch in kind for ch in "*?["):  # `benchkit ls 'gem*'`: a pattern over all kinds
            kind, pattern = None, kind
        else:
            raise BenchkitError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    rows = _registry().list(kind, pattern)
    if not rows:
        raise BenchkitError(f"nothing registered matches {pattern!r}" + (f" among {kind}s" if kind else ""))
    width = max(len(r[1]) for r in rows)
    for k, name, what in rows:
        click.echo(f"{k:<10} {name:<{width}}  {what}")


@main.command()
def plugins() -> None:
    """List plugin packages: name, version, what each registers, and any that failed to load."""
    reg = _registry()
    reg.load_all()  # import every plugin: one that no longer loads is listed as failed
    by_plugin: dict[str, list[str]] = {}
    for kind, entries in reg.entries.items():
        for name, entry in entries.items():
            by_plugin.setdefault(entry.source.plugin, []).append(f"{kind}:{name}")
    from benchkit.plugin_cli import plugin_commands

    for name, (plugin, _) in plugin_commands(reg, frozenset(main.commands)).items():
        by_plugin.setdefault(plugin, []).append(f"command:{name}")
    for src in reg.plugins:
        click.echo(f"{src.dist} {src.version}  {src.plugin}: {', '.join(by_plugin.get(src.plugin, [])) or '-'}")
    presets = sum(len(p) for p in reg.presets.values())
    click.echo(f"presets: {presets}")
    for f in reg.failures:
        click.echo(f"FAILED {f.dist}  {f.plugin}: {f.error}")


@main.command()
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex", "html", "all"]), default="md",
              show_default=True, help="'all': every format, written to --out.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the one format to FILE, not stdout.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write files into DIR: leaderboard.md/.csv/.tex, report.html, figures/, selection.md (with "
                   "hyper-parameter selection; --format all: RUN_DIR/report by default).")
@click.option("--figures/--no-figures", default=None,
              help="Draw the figures (PNG and SVG in DIR/figures, embedded in HTML). Default: on for HTML and --out.")
@click.option("--figure", "kinds", multiple=True,
              type=click.Choice(["sensitivity", "confusion", "cost", "selection"]),
              help="Only these figure kinds (repeatable).")
@click.option("--metric", help="The figures' metric (default: the grid's first).")
@click.option("--group-by", metavar="KEY", help="Group column: best per group in bold ('none': one group). "
                                                "Default: backbone.")
@click.option("--rows", metavar="KEY[,KEY]", help="Row keys within a group. Default: level,aggregator.")
@click.option("--columns", metavar="KEY[,KEY]",
              help="Label columns and profile columns (params_M, gflops, latency_ms, ...).")
@click.option("--compare", nargs=2, multiple=True, metavar="CELL_A CELL_B",
              help="Paired t-test of two cells on their shared folds; a cell is an id prefix or KEY=PATTERN[,...].")
def report(run_dirs: tuple[str, ...], fmt: str, output: str | None, out_dir: str | None, figures: bool | None,
           kinds: tuple[str, ...], metric: str | None, group_by: str | None, rows: str | None, columns: str | None,
           compare: tuple[tuple[str, str], ...]) -> None:
    """Render RUN_DIR's leaderboard, paired comparisons and figures from stored results only. Several run
    directories make one leaderboard (a grid split by --only across machines, or grids that share cells)."""
    from benchkit.report.leaderboard import FORMATS
    from benchkit.report.run_report import FIGURES_DIR, ReportOptions, RunReport
    from benchkit.storage.store import atomic_write_text

    for run_dir in run_dirs:
        if not Path(run_dir).is_dir():
            raise BenchkitError(f"run directory not found: {run_dir}")
    run_dir = run_dirs[0]
    if len(run_dirs) > 1 and not out_dir and (fmt == "all" or ((figures or kinds) and fmt != "html")):
        raise BenchkitError("several run directories: give --out DIR for the report's files")
    if output and (fmt == "all" or out_dir):
        raise BenchkitError("--output writes one format to one file; use --out DIR for several")

    def keys(text: str | None) -> list[str] | None:
        return [k.strip() for k in text.split(",") if k.strip()] if text else None

    options = ReportOptions(group_by=group_by, rows=keys(rows), columns=keys(columns), compare=list(compare),
                            figures=list(kinds) or None, metric=metric)
    rep = RunReport(list(run_dirs), options)
    draw = figures if figures is not None else bool(kinds) or fmt in ("html", "all") or out_dir is not None
    if out_dir or fmt == "all":
        target = Path(out_dir or Path(run_dir) / "report")
        for path in rep.write(target, FORMATS if fmt == "all" else [fmt], figures=draw):
            click.echo(str(path))
        return
    plots = rep.plots() if draw else []  # before any output: a bad --metric fails with nothing written
    text = rep.text(fmt, figures=draw)
    if output:
        atomic_write_text(Path(output), text)
    else:
        click.echo(text, nl=False)
    if plots and fmt != "html":  # a text format has no place for figures: they go next to the run
        from benchkit.report.figures import save_plots

        for path in save_plots(plots, Path(run_dir) / "report" / FIGURES_DIR):
            click.echo(f"figure: {path}", err=True)


# -- `benchkit profile`: its measurement options are the fields of the grid's `profile:` section -----------------

# A ProfileConfig field's flag is --field-name (--field-name/--no-field-name for a boolean), with the field's type,
# default and description; these fields are spelled otherwise, as the command spelled them before the flags were
# generated (or where the natural name is taken):
PROFILE_FLAGS = {
    "actions": "seq-len",  # `--actions` is the vocabulary size of a single composition
    "backbone": "backbone-phase",  # `--backbone/-b` names the backbone plugin
}
PROFILE_NOTES = {  # what a flag's help adds to the field's description, on the command line only
    "actions": "Without GRID_FILE, unset: 16 (the InvPatch runtime analysis).",
    "latency": "--no-latency: no memory either.",
}


def profile_flag(field: str) -> str:
    """The ``benchkit profile`` flag of a ``ProfileConfig`` field, without its dashes."""
    return PROFILE_FLAGS.get(field, field.replace("_", "-"))


def model_options(model: type) -> list[click.Option]:
    """One click option per field of the pydantic ``model``: bool → ``--x/--no-x``, ``Literal`` → a choice, int,
    float and str (optional or not) as themselves; the parameter is named after the flag. Values are checked by the
    model, not by click, so the command line and the grid accept the same values."""
    options = []
    for name, field in model.model_fields.items():
        flag = profile_flag(name)
        kind = field.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind = args[0] if len(args) == 1 else None
        text = (field.description or "").strip()
        text = " ".join(t for t in (text[:1].upper() + text[1:] + "." if text else "", PROFILE_NOTES.get(name)) if t)
        common = {"default": field.default, "help": text, "show_default": field.default is not None}
        param = flag.replace("-", "_")
        if kind is bool:
            options.append(click.Option([param, f"--{flag}/--no-{flag}"], **common))
        elif typing.get_origin(kind) is typing.Literal:
            options.append(click.Option([param, f"--{flag}"], type=click.Choice(typing.get_args(kind)), **common))
        elif kind in (int, float, str):
            options.append(click.Option([param, f"--{flag}"], type=kind, **common))
        else:
            raise TypeError(f"{model.__name__}.{name}: no command-line type for {field.annotation!r}; map it in "
                            f"benchkit/cli.py (model_options)")
    return options


class _ProfileCommand(click.Command):
    """``benchkit profile``: its own options, then those generated from ``ProfileConfig`` (before ``--format``).
    They are made when the command is parsed or its help shown, so other commands start without pydantic."""

    @property
    def params(self) -> list[click.Parameter]:
        if self._params is None:
            from benchkit.grid.config import ProfileConfig

            at = next(i for i, p in enumerate(self._own) if p.name == "fmt")
            self._params = [*self._own[:at], *model_options(ProfileConfig), *self._own[at:]]
        return self._params

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._own, self._params = list(value), None


@main.command(cls=_ProfileCommand)
@click.argument("grid_file", required=False, type=click.Path())
@click.argument("overrides", nargs=-1)
@click.option("--backbone", "-b", help="Backbone plugin or preset: adds the backbone phase; features from its output.")
@click.option("--aggregator", "-a", help="Aggregator plugin or preset.")
@click.option("--predictor", "-p", help="Predictor plugin or preset.")
@click.option("--set", "kwargs", multiple=True, metavar="KIND.KEY=VALUE",
              help="A component keyword, value as YAML (e.g. backbone.weights=random).")
@click.option("--only", multiple=True, metavar="AXIS=PATTERN", help="With GRID_FILE: profile only matching cells.")
@click.option("--level", type=click.Choice(["frame", "patch"]), default="patch", show_default=True)
@click.option("--frames", type=int, default=16, show_default=True,
              help="With -b: video frames per clip; without: feature tokens along time (T).")
@click.option("--image-size", type=int, default=224, show_default=True, help="With -b: frame side in pixels.")
@click.option("--grid", default="16x16", show_default=True, help="Without -b: patch grid HxW (P = H*W).")
@click.option("--dim", type=int, default=768, show_default=True, help="Without -b: feature width D.")
@click.option("--actions", type=int, default=7, show_default=True, help="Action vocabulary size (MUGEN: 7).")
@click.option("--delimiter/--no-delimiter", default=True, show_default=True, help="MUGEN's unused delimiter token.")
# here: the options of ProfileConfig (flops, training, latency, memory, backbone-phase, reference, batch, device,
# dtype, seq-len, min-run-time, warmup, seed), added by _ProfileCommand
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def profile(grid_file, overrides, backbone, aggregator, predictor, kwargs, only, level, frames, image_size, grid, dim,
            actions, delimiter, fmt, output, **measurement) -> None:
    """Parameters, FLOPs per phase (MACs beside them), latency and memory of one composition, or of every cell of
    GRID_FILE; every figure with its unit, convention and input shape (docs/profiling.md). InvPatch at paper scale:
    ``benchkit profile -a invpatch-paper -p prefix-gpt2-paper --frames 8 --grid 14x14``. Neither FLOPs nor
    latency: parameters only, on the meta device. The measurement options are the grid's `profile:` fields
    (`benchkit schema`)."""
    import shlex

    from pydantic import ValidationError

    from benchkit.grid.config import ProfileConfig, validation_error
    from benchkit.profiling import ProfileOptions, render_markdown
    from benchkit.profiling.command import SEQ_LEN, parse_grid_size, parse_kwargs, profile_grid, profile_names
    from benchkit.sequence.vocabulary import Vocabulary
    from benchkit.storage.store import atomic_write_text

    ctx = click.get_current_context()
    words = ["benchkit", "profile"]
    for param in ctx.command.params:
        if param.name == "output" or ctx.get_parameter_source(param.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if isinstance(param, click.Argument):
            words += list(value) if isinstance(value, tuple) else [value]
        elif param.is_flag:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            words += [w for v in (value if param.multiple else (value,)) for w in (param.opts[0], str(v))]
    command = shlex.join(words)
    flags = {name: profile_flag(name).replace("-", "_") for name in ProfileConfig.model_fields}
    values = {name: measurement[flag] for name, flag in flags.items()}
    parsed = None
    if grid_file:
        if backbone or aggregator or predictor or kwargs:
            raise BenchkitError("give either GRID_FILE or components (-b/-a/-p/--set), not both")
        _, parsed = _load(grid_file, overrides)
        if parsed.profile is not None:  # the grid's `profile:` section, then the flags given on the command line
            given = {name for name, flag in flags.items()
                     if ctx.get_parameter_source(flag) == click.core.ParameterSource.COMMANDLINE}
            values = {**parsed.profile.model_dump(), **{name: values[name] for name in given}}
    elif values["actions"] is None:
        values["actions"] = SEQ_LEN  # a grid's cells decode the data's longest sequence
    try:
        options = ProfileOptions.of(ProfileConfig.model_validate(values))
    except ValidationError as e:
        raise validation_error(e, key=lambda loc: f"--{profile_flag(loc)}") from None
    if parsed is not None:
        from benchkit.grid.config import parse_selectors
        from benchkit.grid.plan import plan

        cells = plan(parsed, _registry(), parse_selectors(only))
        results = profile_grid(_registry(), cells, options, command)
    else:
        if overrides or only:
            raise BenchkitError("OVERRIDES and --only apply to a grid file; name components with -b/-a/-p")
        vocab = Vocabulary(tuple(f"a{i}" for i in range(actions)), delimiter=delimiter)
        names = {"backbone": backbone, "aggregator": aggregator, "predictor": predictor}
        results = [profile_names(
            _registry(), names, parse_kwargs(kwargs), level=level, frames=frames, image_size=image_size,
            grid=parse_grid_size(grid), dim=dim, vocabulary=vocab, options=options, command=command,
        )]
    if fmt == "json":
        text = json.dumps(results if grid_file else results[0], indent=2) + "\n"
    else:
        text = "\n".join(render_markdown(r) for r in results)
    if output:
        atomic_write_text(Path(output), text)
    else:
        click.echo(text, nl=False)


@main.command()
def schema() -> None:
    """Print the grid's JSON Schema (for editor completion and validation)."""
    from benchkit.grid.config import Grid

    click.echo(json.dumps(Grid.model_json_schema(), indent=2))


@main.group()
def new() -> None:
    """Create a project from a template."""


@new.command(name="plugin")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to create NAME/ in.")
def new_plugin(name: str, parent: str) -> None:
    """Scaffold plugin package NAME (e.g. benchkit-acme): an aggregator, a dataset, a grid using them next to
    built-in plugins, and a test. See docs/plugins.md."""
    from benchkit.scaffold import new_plugin as scaffold

    root = scaffold(name, parent)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        click.echo(f"created {path}")
    click.echo(f"next: pip install -e {root} && benchkit plugins && python -m pytest {root}")


@main.group()
def cache() -> None:
    """Show or clear the feature cache."""


@cache.command(name="ls")
@click.option("--dir", "root", type=click.Path(file_okay=False), help="Default: $BENCHKIT_CACHE_DIR or ~/.cache.")
def cache_ls(root: str | None) -> None:
    """List feature cache entries with their sizes."""
    from benchkit.storage.features import FeatureCache

    fc = FeatureCache(root)
    rows = fc.entries()
    total = 0
    for r in rows:
        meta = r["meta"]
        total += r["bytes"]
        what = meta.get("backbone", {}).get("plugin", "?")
        shape = meta.get("files", {}).get("patch", {}).get("shape", "?")
        click.echo(f"{r['key']}  {r['bytes'] / 2**20:9.1f} MiB  {what}  patch {shape}  {meta.get('created', '')}")
    click.echo(f"{len(rows)} entries, {total / 2**20:.1f} MiB in {fc.dir}")


@cache.command(name="prune")
@click.argument("keys", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every entry.")
@click.option("--dir", "root", type=click.Path(file_okay=False))
def cache_prune(keys: tuple[str, ...], everything: bool, root: str | None) -> None:
    """Remove entries by key prefix (or --all)."""
    from benchkit.storage.features import FeatureCache

    if not keys and not everything:
        raise BenchkitError("name entries to remove (key prefixes from `benchkit cache ls`) or pass --all")
    removed = FeatureCache(root).prune(None if everything else list(keys))
    click.echo(f"removed {len(removed)} entries")


if __name__ == "__main__":
    main()
