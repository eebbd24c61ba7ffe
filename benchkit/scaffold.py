"""``benchkit new plugin NAME``: a plugin package ready to install, with an aggregator, a dataset, a grid that uses
them next to built-in plugins, and a test.

The package is the template ``benchkit/templates/plugin/`` (package data), rendered: file contents are
``string.Template`` text with ``$dist``, ``$package`` and ``$short``; a path segment ``{package}`` becomes the import
package. ``docs/examples/benchkit-example-plugin`` is the template rendered for ``benchkit-example-plugin``
(``tests/test_plugin_package.py`` keeps the two equal). From NAME come the distribution name (NAME), the import
package (``benchkit_acme`` for ``benchkit-acme``) and a short name that prefixes entry points and registered names
(``acme``: ``benchkit-`` and ``-plugin`` are dropped), so that two scaffolded packages do not clash.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from benchkit.errors import BenchkitError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*$")


def plugin_names(name: str) -> dict[str, str]:
    """NAME → ``dist`` (NAME), ``package`` (its import name) and ``short`` (the prefix of what it registers)."""
    if not _NAME.match(name):
        raise BenchkitError(f"plugin name {name!r}: use letters, digits and single '-' or '_' (e.g. benchkit-acme)")
    package = name.lower().replace("-", "_")
    short = re.sub(r"_plugins?$", "", re.sub(r"^benchkit_", "", package)).replace("_", "-")
    if keyword.iskeyword(package) or short in ("", "benchkit", "plugin", "plugins"):
        raise BenchkitError(f"plugin name {name!r} says nothing of its own; try benchkit-<what it adds>")
    return {"dist": name, "package": package, "short": short}


def template_files(template: str = "plugin") -> dict[str, str]:
    """Relative path → text of every file of ``benchkit/templates/<template>``, unrendered."""
    files: dict[str, str] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir():
                if item.name != "__pycache__":
                    walk(item, f"{prefix}{item.name}/")
            elif not item.name.endswith((".pyc", ".pyo")):
                files[prefix + item.name] = item.read_text(encoding="utf-8")

    walk(resources.files("benchkit") / "templates" / template, "")
    return dict(sorted(files.items()))


def plugin_files(name: str) -> dict[str, str]:
    """Relative path → text of every file of the package for NAME."""
    names = plugin_names(name)
    return {
        path.replace("{package}", names["package"]): Template(text).substitute(names)
        for path, text in template_files("plugin").items()
    }


def new_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write the package for NAME into ``parent/NAME``; refuses an existing folder or an importable package name."""
    files = plugin_files(name)
    package = plugin_names(name)["package"]
    if importlib.util.find_spec(package) is not None:
        raise BenchkitError(f"a module named {package!r} is already importable; choose another plugin name")
    root = Path(parent) / name
    if root.exists():
        raise BenchkitError(f"{root} already exists; choose another name or --dir")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
