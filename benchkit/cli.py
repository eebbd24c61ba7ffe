"""The ``benchkit`` command: run, validate, ls, plugins, report, schema, cache.

A user mistake (``BenchkitError``) prints one line, ``error: ...``, and exits with code 2.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from benchkit.errors import BenchkitError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # one clear line and exit 2 for every user mistake
        try:
            return super().invoke(ctx)
        except BenchkitError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: the folds stored so far are kept; run the same command to resume", err=True)
            ctx.exit(130)


def _registry():
    from benchkit.plugins import get_registry

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
    from benchkit.config import apply_overrides, load_raw, parse_grid

    raw = apply_overrides(load_raw(grid_path), overrides)
    return raw, parse_grid(raw, grid_path)


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--run-dir", type=click.Path(file_okay=False), help="Default: runs/<grid name>.")
@click.option("--only", multiple=True, metavar="AXIS=PATTERN[,AXIS=PATTERN]", help="Run only matching cells.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def run(grid: str, overrides: tuple[str, ...], run_dir: str | None, only: tuple[str, ...], no_progress: bool) -> None:
    """Run GRID (resuming what is stored) and write its leaderboard. OVERRIDES: key.path=value."""
    from benchkit.config import parse_selectors
    from benchkit.runner import run_grid

    raw, parsed = _load(grid, overrides)
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


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--only", multiple=True, metavar="AXIS=PATTERN")
def validate(grid: str, overrides: tuple[str, ...], only: tuple[str, ...]) -> None:
    """Check GRID without running it: schema, plugin names, keyword arguments, levels, data paths."""
    from benchkit.config import parse_selectors
    from benchkit.plan import plan

    _, parsed = _load(grid, overrides)
    cells = plan(parsed, _registry(), parse_selectors(only))
    click.echo(f"{grid}: ok, {len(cells)} cells x {parsed.protocol.folds} folds")
    for pc in cells:
        labels = " ".join(f"{k}={v}" for k, v in pc.cell.labels().items())
        click.echo(f"  {pc.id}  {labels}")


@main.command(name="ls")
@click.argument("kind", required=False)
@click.argument("pattern", default="*")
def ls(kind: str | None, pattern: str) -> None:
    """List registered plugins and presets, optionally of one KIND, matching a wildcard PATTERN."""
    from benchkit.plugins import KINDS

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
    by_plugin: dict[str, list[str]] = {}
    for kind, entries in reg.entries.items():
        for name, entry in entries.items():
            by_plugin.setdefault(entry.source.plugin, []).append(f"{kind}:{name}")
    for src in reg.plugins:
        click.echo(f"{src.dist} {src.version}  {src.plugin}: {', '.join(by_plugin.get(src.plugin, [])) or '-'}")
    presets = sum(len(p) for p in reg.presets.values())
    click.echo(f"presets: {presets}")
    for f in reg.failures:
        click.echo(f"FAILED {f.dist}  {f.plugin}: {f.error}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex"]), default="md")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def report(run_dir: str, fmt: str, output: str | None) -> None:
    """Re-render RUN_DIR's leaderboard from stored results only."""
    from benchkit.report.leaderboard import collect, render
    from benchkit.store import RunStore, atomic_write_text

    if not Path(run_dir).is_dir():
        raise BenchkitError(f"run directory not found: {run_dir}")
    text = render(collect(RunStore(run_dir)), fmt)
    if output:
        atomic_write_text(Path(output), text)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--aggregator", "-a", required=True, help="Aggregator plugin or preset.")
@click.option("--predictor", "-p", help="Predictor plugin or preset.")
@click.option("--level", type=click.Choice(["frame", "patch"]), default="patch")
@click.option("--frames", type=int, default=16, show_default=True, help="Tokens along time (T).")
@click.option("--grid", default="16x16", show_default=True, help="Patch grid HxW (P = H*W).")
@click.option("--dim", type=int, default=768, show_default=True, help="Backbone width D.")
@click.option("--actions", type=int, default=7, show_default=True, help="Action vocabulary size (MUGEN: 7).")
@click.option("--delimiter/--no-delimiter", default=True, show_default=True, help="MUGEN's unused delimiter token.")
@click.option("--seq-len", type=int, default=15, show_default=True, help="Actions per sample.")
def profile(aggregator, predictor, level, frames, grid, dim, actions, delimiter, seq_len) -> None:
    """Parameter counts of an aggregator (+ predictor) for a given feature shape, e.g. InvPatch at the VideoMAE
    layout: ``benchkit profile -a invpatch-paper -p prefix-gpt2-paper --frames 8 --grid 14x14``."""
    from benchkit.interfaces import FeatureSpec
    from benchkit.profiling import parameter_table
    from benchkit.vocabulary import Vocabulary

    try:
        h, w = (int(v) for v in grid.lower().split("x"))
    except ValueError:
        raise BenchkitError(f"--grid {grid!r} is not HxW (e.g. 14x14)") from None
    spec = FeatureSpec(level=level, dim=dim, frames=frames, grid=(h, w))
    vocab = Vocabulary(tuple(f"a{i}" for i in range(actions)), delimiter=delimiter)
    rows = parameter_table(_registry(), aggregator, predictor, spec, vocab, seq_len)
    click.echo(f"features: level={level} T={frames} grid={h}x{w} D={dim}; vocabulary {vocab.size} tokens")
    click.echo(f"{'component':<40} {'parameters':>14} {'trainable':>14}")
    for r in rows:
        click.echo(f"{r.component:<40} {r.total:>14,} {r.trainable:>14,}")


@main.command()
def schema() -> None:
    """Print the grid's JSON Schema (for editor completion and validation)."""
    from benchkit.config import Grid

    click.echo(json.dumps(Grid.model_json_schema(), indent=2))


@main.group()
def cache() -> None:
    """Show or clear the feature cache."""


@cache.command(name="ls")
@click.option("--dir", "root", type=click.Path(file_okay=False), help="Default: $BENCHKIT_CACHE_DIR or ~/.cache.")
def cache_ls(root: str | None) -> None:
    """List feature cache entries with their sizes."""
    from benchkit.features import FeatureCache

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
    from benchkit.features import FeatureCache

    if not keys and not everything:
        raise BenchkitError("name entries to remove (key prefixes from `benchkit cache ls`) or pass --all")
    removed = FeatureCache(root).prune(None if everything else list(keys))
    click.echo(f"removed {len(removed)} entries")


if __name__ == "__main__":
    main()
