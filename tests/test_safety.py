"""Untrusted files are loaded safely: no unsafe YAML, no pickle, no code evaluation, anywhere in benchkit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("benchkit/**/*.py"), *ROOT.glob("plugins/**/*.py")])


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func), {k.arg: k.value for k in node.keywords}


def _const(node) -> object:
    return node.value if isinstance(node, ast.Constant) else "<dynamic>"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_loading(path):
    tree = ast.parse(path.read_text(), str(path))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names} | {node.module for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert not {"pickle", "cPickle", "dill", "marshal", "shelve"} & imported, "no pickle-based formats"
    for node, func, kw in _calls(path):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        assert func not in ("eval", "exec"), where
        assert func not in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"), f"{where}: use yaml.safe_load"
        if func in ("torch.load",):
            assert _const(kw.get("weights_only")) is True, f"{where}: torch.load needs weights_only=True"
        if func in ("np.load", "numpy.load"):
            assert _const(kw.get("allow_pickle", ast.Constant(False))) is False, f"{where}: allow_pickle"
