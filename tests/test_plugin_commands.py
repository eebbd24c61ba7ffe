"""Plugins add CLI commands through ``benchkit_commands()``; a name already taken is a failure naming both."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import click
import pytest
from click.testing import CliRunner

import benchkit.cli
from benchkit.errors import DataError
from benchkit.plugin_cli import plugin_commands
from benchkit.registry.hookspecs import hookimpl
from benchkit.registry.plugins import load_plugins


def commands_plugin(name: str, *commands: click.Command, returns=None) -> types.ModuleType:
    module = types.ModuleType(name)
    module.benchkit_commands = hookimpl(lambda: returns if returns is not None else list(commands))
    return module


@click.command()
@click.argument("who", default="world")
def hello(who):
    """Say hello."""
    click.echo(f"hello {who}")


@click.command(name="ls")
def fake_ls():
    """Shadows nothing: benchkit has ls."""


@click.command()
def broken():
    """Fails as a user error."""
    raise DataError("no data here")


def test_commands_are_collected_and_clashes_recorded():
    reg = load_plugins(
        extra=[
            commands_plugin("first", hello, broken),
            commands_plugin("second", hello, fake_ls),
            commands_plugin("raising", returns=RuntimeError),  # not iterable: a TypeError inside the guard
            commands_plugin("wrong", returns=["not a command"]),
        ],
        registry_files=[],
    )
    found = plugin_commands(reg, frozenset(benchkit.cli.main.commands))
    assert {name: plugin for name, (plugin, _) in found.items()} == {"hello": "first", "broken": "first"}
    errors = [(f.plugin, f.error) for f in reg.failures if f.plugin in ("second", "raising", "wrong")]
    assert errors[:2] == [
        ("second", "command 'hello' is provided by both <in-process> (first) and <in-process> (second)"),
        ("second", "command 'ls' is provided by both benchkit (built-in) and <in-process> (second)"),
    ]
    assert errors[2][1].startswith("TypeError") and "not a click command" in errors[3][1]


@pytest.fixture
def cli_with(monkeypatch):
    def use(*modules):
        reg = load_plugins(extra=list(modules), registry_files=[])
        monkeypatch.setattr(benchkit.cli, "_registry", lambda: reg)
        return reg

    return use


def test_plugin_commands_run_and_show_in_help(cli_with):
    cli_with(commands_plugin("first", hello, broken))
    runner = CliRunner()
    result = runner.invoke(benchkit.cli.main, ["hello", "there"])
    assert result.exit_code == 0 and result.output == "hello there\n"
    help_text = runner.invoke(benchkit.cli.main, ["--help"]).output
    assert "hello" in help_text and "Say hello." in help_text and "validate" in help_text
    result = runner.invoke(benchkit.cli.main, ["broken"])
    assert result.exit_code == 2 and result.stderr == "error: no data here\n"
    assert runner.invoke(benchkit.cli.main, ["nope"]).exit_code == 2  # click's usage error


def test_benchkit_plugins_lists_commands_and_their_clashes(cli_with):
    cli_with(commands_plugin("first", hello), commands_plugin("second", fake_ls))
    result = CliRunner().invoke(benchkit.cli.main, ["plugins"])
    assert result.exit_code == 0
    assert "FAILED <in-process>  second: command 'ls' is provided by both benchkit (built-in)" in result.output


def test_through_entry_points_of_two_distributions(tmp_path):
    hello_from = """
        import click
        from benchkit.registry.hookspecs import hookimpl

        @click.command()
        def hello():
            click.echo("hello from {dist}")

        @hookimpl
        def benchkit_commands():
            return [hello]
    """
    twin = """
        from benchkit.registry.hookspecs import hookimpl

        @hookimpl
        def benchkit_register(registry):
            registry.metric("twin", len)
    """
    _dist(tmp_path, "dist-a", {"a.cli": ("mod_a_cli", hello_from.format(dist="dist-a")), "a.reg": ("mod_a_reg", twin)})
    _dist(tmp_path, "dist-b", {"b.cli": ("mod_b_cli", hello_from.format(dist="dist-b")), "b.reg": ("mod_b_reg", twin)})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p),
           "BENCHKIT_DISABLE_PLUGIN_AUTOLOAD": "1", "BENCHKIT_PLUGINS": "a.cli,a.reg,b.cli,b.reg"}

    def benchkit(*args):
        return subprocess.run([sys.executable, "-m", "benchkit.cli", *args], capture_output=True, text=True, env=env)

    out = benchkit("plugins")
    assert out.returncode == 0, out.stderr
    # which distribution loads first depends on the file system; the failure names both either way
    failed = {line for line in out.stdout.splitlines() if line.startswith("FAILED")}
    second = "dist-b" if "FAILED dist-b" in out.stdout else "dist-a"
    first = {"dist-a": "dist-b", "dist-b": "dist-a"}[second]
    f, s = first[-1], second[-1]
    assert failed == {
        f"FAILED {second}  {s}.reg: PluginError: metric 'twin' is registered by both {first} ({f}.reg) and {second} "
        f"({s}.reg)",
        f"FAILED {second}  {s}.cli: command 'hello' is provided by both {first} ({f}.cli) and {second} ({s}.cli)",
    }
    out = benchkit("hello")
    assert out.returncode == 0 and out.stdout == f"hello from {first}\n", out.stderr


def _dist(site, dist: str, modules: dict[str, tuple[str, str]]) -> None:
    """A distribution installed in ``site``: entry point name → (module, source)."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[benchkit]\n" + "".join(f"{k} = {m}\n" for k, (m, _) in modules.items()))
    for module, source in modules.values():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
