"""Every code block of docs/plugins.md is checked or run, so that the guide cannot rot.

- A block whose info string says ``file=PATH`` is that file. Under ``docs/examples`` it must equal the repository's
  copy (the example package is the one the guide shows); every such block is written into a scratch workspace (a
  copy of ``docs/examples``) before anything runs.
- ``console`` blocks run in document order in the workspace: each ``$ command`` runs in bash, and its stdout then
  stderr must match the lines after it (``...`` stands for any text, or any lines when alone on a line). It must exit
  0 unless an ``error:`` line is expected. ``pip install`` installs into a folder on ``PYTHONPATH`` (no dependencies,
  no index, no build isolation), so nothing outside the workspace changes and nothing is downloaded.
- ``python`` blocks without a file run, in document order too, in a fresh interpreter in the workspace.
- ``toml`` and ``yaml`` blocks must parse.

Any other language fails: the guide holds nothing that is not checked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugins.md"
EXAMPLE = REPO / "docs" / "examples" / "benchkit-example-plugin"
LANGUAGES = ("console", "python", "toml", "yaml")
PIP_INTO_SITE = (
    'pip() { if [ "$1" = install ]; then shift; python -m pip install --quiet --no-deps --no-build-isolation '
    '--no-index --target "$BENCHKIT_DOCS_SITE" "$@"; else python -m pip "$@"; fi; }\n'
)


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    file: str | None
    text: str


def guide_blocks(text: str) -> list[Block]:
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)(.*)$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j] == "```")
        file = re.search(r"\bfile=(\S+)", fence[2])
        blocks.append(Block(i + 1, fence[1], file[1] if file else None, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return blocks


BLOCKS = guide_blocks(GUIDE.read_text())


def console_commands(block: Block) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    session: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        else:
            assert session, f"plugins.md:{block.line}: console output before any `$ command`"
            session[-1][1].append(line.rstrip())
    return session


def output_matches(expected: list[str], actual: str) -> bool:
    pattern = "".join(
        r"(?:.*\n)*?" if line == "..." else re.escape(line).replace(r"\.\.\.", ".*?") + r"\n" for line in expected
    )
    lines = [line.rstrip() for line in actual.splitlines()]
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in lines)) is not None


def test_output_matching():
    assert output_matches(["a", "...", "c ... e"], "a\nb\nb2\nc d e\n")
    assert output_matches(["...", "x"], "x\n") and output_matches([], "")
    assert not output_matches(["a", "c"], "a\nb\nc\n") and not output_matches(["a"], "a\nb\n")


def test_every_block_is_of_a_checked_kind_and_parses():
    assert BLOCKS, "no code blocks found in docs/plugins.md"
    for block in BLOCKS:
        where = f"plugins.md:{block.line}"
        assert block.language in LANGUAGES, f"{where}: ```{block.language} is not checked; use one of {LANGUAGES}"
        if block.language == "toml":
            tomllib.loads(block.text)
        elif block.language == "yaml":
            yaml.safe_load(block.text)
        elif block.language == "python":
            compile(block.text, where, "exec")
        elif block.language == "console":
            assert console_commands(block), f"{where}: a console block without a `$ command`"


def test_the_guide_shows_the_example_package_as_it_is():
    shown = {b.file: b.text for b in BLOCKS if b.file and b.file.startswith("docs/examples/")}
    for path, text in shown.items():
        assert (REPO / path).is_file(), f"docs/plugins.md shows {path}, which does not exist"
        assert (REPO / path).read_text() == text, f"docs/plugins.md shows {path} differently from the file"
    files = {str(p.relative_to(REPO)) for p in EXAMPLE.rglob("*") if p.is_file() and p.name != "__init__.py"}
    files = {f for f in files if "__pycache__" not in f and ".egg-info" not in f and "/build/" not in f}
    assert files <= set(shown), f"files of the example the guide does not show: {sorted(files - set(shown))}"


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "docs" / "examples", ws / "docs" / "examples",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    for block in BLOCKS:
        if block.file:
            (ws / block.file).parent.mkdir(parents=True, exist_ok=True)
            (ws / block.file).write_text(block.text)
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCHKIT_", "PYTEST_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p),
        BENCHKIT_DOCS_SITE=str(site),
        BENCHKIT_CACHE_DIR=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        COLUMNS="80",
        OMP_NUM_THREADS="1",  # tiny models: one thread is as fast, and far cheaper on a busy machine
    )
    return ws, env


def test_every_command_and_program_of_the_guide_runs(workspace):
    ws, env = workspace
    for block in BLOCKS:
        where = f"docs/plugins.md:{block.line}"
        if block.language == "console":
            for command, expected in console_commands(block):
                out = subprocess.run(["bash", "-c", PIP_INTO_SITE + command], cwd=ws, env=env, capture_output=True,
                                     text=True, timeout=300)
                actual = out.stdout + out.stderr
                failed_ok = any(line.startswith("error:") for line in expected)
                assert out.returncode == 0 or (failed_ok and out.returncode == 2), (
                    f"{where}: `{command}` exited {out.returncode}:\n{actual}"
                )
                assert output_matches(expected, actual), (
                    f"{where}: `{command}` printed\n{actual}\nwhich does not match\n" + "\n".join(expected)
                )
        elif block.language == "python" and not block.file:
            out = subprocess.run([sys.executable, "-c", block.text], cwd=ws, env=env, capture_output=True, text=True,
                                 timeout=300)
            assert out.returncode == 0, f"{where}: the Python block failed:\n{out.stdout}{out.stderr}"
