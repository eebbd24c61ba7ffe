"""The core's layers (docs/architecture.md): each module imports only from its own layer, the layers below it and
the shared modules, so the layers can be read bottom-up and no import cycle can form. Checked on the source (every
import, lazy ones inside functions included), so a new module is covered as soon as it exists."""

from __future__ import annotations

import ast
from pathlib import Path

import benchkit

ROOT = Path(benchkit.__file__).parent
# bottom to top; "shared" are the top-level modules every layer may use, "top" the entry points over everything
ORDER = ["shared", "sequence", "registry", "grid", "learn", "storage", "profiling", "report", "run", "top"]
SHARED = {"errors", "paths", "yaml_safe"}
TOP = {"api", "cli", "plugin_cli", "scaffold", "__init__"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "benchkit":
        return None
    if len(parts) == 1:
        return "top"
    if parts[1] in ORDER:
        return parts[1]
    if parts[1] in SHARED:
        return "shared"
    if parts[1] in TOP:
        return "top"
    raise AssertionError(f"benchkit.{parts[1]} belongs to no layer: add it to one (docs/architecture.md)")


def imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "benchkit"]
    return out


def test_every_import_points_down_or_sideways():
    wrong = []
    for path in sorted(p for p in ROOT.rglob("*.py") if "templates" not in p.relative_to(ROOT).parts):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        own = layer_of(".".join(rel.parts))
        for line, module in imports(path):
            target = layer_of(module)
            if target is None or module == "benchkit":
                continue
            if ORDER.index(target) > ORDER.index(own):
                wrong.append(f"{rel}.py:{line} ({own}) imports {module} ({target})")
    assert not wrong, "imports that point up a layer:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from benchkit.run.runner import run_grid\n")
    assert [(m, layer_of(m)) for _, m in imports(bad)] == [("benchkit.run.runner", "run")]
    assert ORDER.index("run") > ORDER.index("grid")


def _module_graph() -> dict[str, set[str]]:
    """Module -> the benchkit modules it imports (lazy imports too; ``if TYPE_CHECKING:`` blocks left out)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(p for p in ROOT.rglob("*.py") if "templates" not in p.relative_to(ROOT).parts):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and ast.unparse(node.test).endswith("TYPE_CHECKING") for n in ast.walk(node)}
        targets = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add((node.module, tuple(a.name for a in node.names)))
        graph[name] = targets
    modules = set(graph)

    def resolve(target) -> set[str]:  # `from pkg import submodule` depends on the submodule, not on pkg's names
        if isinstance(target, str):
            return {target}
        module, names = target
        subs = {f"{module}.{n}" for n in names if f"{module}.{n}" in modules}
        return subs if len(subs) == len(names) else subs | {module}

    graph = {m: {r for t in ts for r in resolve(t) if r.startswith("benchkit.")} for m, ts in graph.items()}
    return {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}


def test_no_import_cycle():
    graph, state, cycles = _module_graph(), {}, []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*stack[stack.index(target):], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
