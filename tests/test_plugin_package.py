"""Third-party plugin packages for real: ``benchkit new plugin`` renders the example package, and the example, a
freshly scaffolded package and the guide's twelve-line plugin, pip-installed into a folder on ``PYTHONPATH`` (no
entry point is faked), are listed by ``benchkit plugins``, pass their own tests and run in grids next to built-in
plugins. (``tests/test_docs_plugins.py`` runs the guide's session: install, ``plugins``, ``ls``, a grid, the
allow-list.)
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchkit.cli import main
from benchkit.scaffold import plugin_files, template_files

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "benchkit-example-plugin"
SMALLEST = REPO / "docs" / "examples" / "benchkit-std-pool"  # the guide's complete plugin in twelve lines
IGNORED = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")


def tree(root: Path) -> dict[str, str]:
    skip = ("build", "__pycache__", ".pytest_cache")
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part in skip or part.endswith(".egg-info") for part in p.relative_to(root).parts)
    }


def test_the_example_is_the_template_rendered(tmp_path):
    result = CliRunner().invoke(main, ["new", "plugin", "benchkit-example-plugin", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "benchkit-example-plugin") == tree(EXAMPLE)
    assert set(tree(EXAMPLE)) == set(plugin_files("benchkit-example-plugin"))


def test_the_template_is_package_data():
    """Every template file is shipped: ``pyproject.toml`` lists it as package data of ``benchkit``."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["benchkit"]
    files = [f"templates/plugin/{path}" for path in template_files("plugin")]
    assert len(files) == 6
    assert all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), (files, globs)


def test_a_wheel_ships_the_presets_and_the_template(tmp_path):
    """Built as a wheel and installed without the source tree, benchkit still has every preset and its template."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("benchkit", "plugins"):
        shutil.copytree(REPO / folder, source / folder, ignore=IGNORED)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    out = subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                          str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("benchkit-*.whl")
    out = subprocess.run([*pip, "install", "--quiet", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    shutil.rmtree(source)  # nothing of the source tree is left to fall back on
    probe = (
        "import benchkit, json; from benchkit.registry.plugins import REGISTRY_FILE, get_registry; "
        "from benchkit.scaffold import template_files; r = get_registry(); "
        "print(json.dumps([benchkit.__file__, str(REGISTRY_FILE), sorted(r.presets['aggregator']), "
        "len(template_files('plugin'))]))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "BENCHKIT_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    module, registry_file, aggregators, templates = json.loads(out.stdout.splitlines()[-1])
    assert module.startswith(str(tmp_path / "site")) and registry_file.startswith(str(tmp_path / "site"))
    assert {"invpatch-paper", "invpatch-tiny", "lstm-tiny"} <= set(aggregators)
    assert templates == 6


def test_the_smallest_plugin_is_twelve_lines_against_the_api():
    lines = [line for line in (SMALLEST / "std_pool.py").read_text().splitlines() if line.strip()]
    assert len(lines) <= 12 and "from benchkit.api import hookimpl" in lines


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["torch"], "a module named 'torch' is already importable"),
        (["benchkit-plugin"], "says nothing of its own"),
        (["my plugin"], "use letters, digits and single '-' or '_'"),
    ],
)
def test_new_plugin_refuses_bad_names(tmp_path, args, error):
    result = CliRunner().invoke(main, ["new", "plugin", *args, "--dir", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert error in result.stderr
    assert not any(tmp_path.iterdir())


def test_new_plugin_refuses_an_existing_folder(tmp_path):
    (tmp_path / "benchkit-acme").mkdir()
    result = CliRunner().invoke(main, ["new", "plugin", "benchkit-acme", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "already exists" in result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example and a scaffolded ``benchkit-acme``, pip-installed into ``site``; returns (root, environment)."""
    root = tmp_path_factory.mktemp("packages")
    shutil.copytree(EXAMPLE, root / EXAMPLE.name, ignore=IGNORED)  # building writes into the source folder
    result = CliRunner().invoke(main, ["new", "plugin", "benchkit-acme", "--dir", str(root)])
    assert result.exit_code == 0, result.output
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    shutil.copytree(SMALLEST, root / SMALLEST.name, ignore=IGNORED)
    packages = [str(root / EXAMPLE.name), str(root / "benchkit-acme"), str(root / SMALLEST.name)]
    out = subprocess.run([*pip, "--target", str(root / "site"), *packages], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCHKIT_DISABLE", "BENCHKIT_PLUGINS"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "site"), env.get("PYTHONPATH", "")) if p)
    env["BENCHKIT_CACHE_DIR"] = str(root / "cache")
    env["OMP_NUM_THREADS"] = "1"  # tiny models: one thread is as fast, and far cheaper on a busy machine
    return root, env


def test_benchkit_plugins_lists_both_packages(installed):
    root, env = installed
    out = subprocess.run([Path(sys.executable).parent / "benchkit", "plugins"], env=env, cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for line in [
        "benchkit-example-plugin 0.1.0  example.aggregator: aggregator:example-maxmean",
        "benchkit-example-plugin 0.1.0  example.dataset: dataset:example-flicker",
        "benchkit-acme 0.1.0  acme.aggregator: aggregator:acme-maxmean",
        "benchkit-acme 0.1.0  acme.dataset: dataset:acme-flicker",
        "benchkit-std-pool 0.1.0  std-pool: aggregator:std-pool",
        "benchkit 0.1.0  aggregators.mean: aggregator:mean",
    ]:
        assert line in lines, out.stdout
    assert not [line for line in lines if line.startswith(("FAILED benchkit-example-plugin", "FAILED benchkit-acme",
                                                           "FAILED benchkit-std-pool"))]


def test_the_smallest_plugin_runs_in_a_grid(installed):
    root, env = installed
    grid = root / EXAMPLE.name / "grid.yaml"  # its datasets, backbone and predictor; the aggregator replaced
    out = subprocess.run([Path(sys.executable).parent / "benchkit", "run", str(grid), "aggregator=[std-pool, mean]",
                          "--run-dir", str(root / "run-std-pool"), "--no-progress"],
                         env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " std-pool |" in out.stdout and " mean |" in out.stdout, out.stdout


def test_their_own_tests_pass_with_grids_next_to_built_in_plugins(installed):
    root, env = installed
    tests = [str(root / EXAMPLE.name / "tests"), str(root / "benchkit-acme" / "tests")]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib", *tests],
        env=env, cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0 and "8 passed" in out.stdout, out.stdout + out.stderr
