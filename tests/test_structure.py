"""The package's shape: no import cycle, small modules and functions, three top-level modules.

The import graph is read with `ast` from the source (nothing is imported): an edge A -> B for
every `import B` / `from B import x` in A, at any depth (function-level imports too, since a
cycle through a lazy import is still a cycle in the design). `from P import m` where `m` is a
submodule of package P is an edge to `P.m`. A package's `__init__` is a module like any other;
importing `P.m` does not count as importing `P`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zsseg_bench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
TOP_LEVEL_MODULES = {"__init__.py", "errors.py", "registry.py", "paths.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text())) for p in sorted(PACKAGE.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, (path, tree) in sources.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(node, name, path.name == "__init__.py")
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in sources else target for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in sources and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_the_line_limit():
    long = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p, _ in _sources().values()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_over_the_line_limit():
    long = []
    for path, tree in _sources().values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {n} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_only_the_three_shared_modules_sit_at_the_top_of_the_package():
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL_MODULES, f"modules that belong in a subpackage: {sorted(top - TOP_LEVEL_MODULES)}"


@pytest.mark.parametrize("method_module", ["spnet", "zs3net", "self_training", "cagnet.model"])
def test_one_method_family_does_not_import_another(method_module):
    families = {"zsseg_bench.methods.spnet", "zsseg_bench.methods.zs3net", "zsseg_bench.methods.self_training",
                "zsseg_bench.methods.cagnet"}
    name = f"zsseg_bench.methods.{method_module}"
    own = name if not method_module.startswith("cagnet") else "zsseg_bench.methods.cagnet"
    imported = {t for t in import_graph()[name] if any(t == f or t.startswith(f + ".") for f in families - {own})}
    assert not imported, f"{name} imports another method family: {sorted(imported)}"
