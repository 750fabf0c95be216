"""The package's layout, as documented in kdlab/__init__.py and CONTRIBUTING.md, read off its imports.

The core (the modules at the top of the package, and kdlab.teachers) imports nothing above it;
lessons import only the core; widgets and exercises import the core and lessons; nothing imports
the benchmark; and no module imports itself through a cycle. The graph counts every import,
including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kdlab"

ALLOWED = {  # layer -> the layers its modules may import
    "core": {"core"},
    "lessons": {"core", "lessons"},
    "widgets": {"core", "lessons", "widgets"},
    "exercises": {"core", "lessons", "exercises"},
    "bench": {"core", "lessons", "widgets", "exercises", "bench"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("lessons", "widgets", "exercises", "bench"):
        return parts[1]
    return "core"


def resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    """The kdlab modules an import statement loads (``from .x import y`` may name a submodule ``y``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "kdlab"]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "kdlab":
        return []
    found = [target] if target in known else []
    found += [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
    if not found:  # an attribute of a package: the package itself
        found = [target]
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(resolve(module, path.name == "__init__.py", node, known))
        graph[module] = {t for t in targets if t != module}
    return graph


GRAPH = import_graph()


def test_the_graph_sees_the_layers():
    # a guard against a parser that finds nothing (and so could never fail)
    assert "kdlab.training" in GRAPH["kdlab.lessons.pitfalls"] or any(
        t.startswith("kdlab.") and layer(t) == "core" for t in GRAPH["kdlab.lessons.pitfalls"])
    assert {"core", "lessons", "widgets", "exercises", "bench"} <= {layer(m) for m in GRAPH}
    assert "kdlab.lessons.feature_hints" in GRAPH["kdlab.widgets.feature_hints"]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m != "kdlab"))
def test_imports_respect_the_layers(module):
    bad = sorted(t for t in GRAPH[module] if t != "kdlab" and layer(t) not in ALLOWED[layer(module)])
    assert not bad, f"{module} ({layer(module)}) imports {bad}; a {layer(module)} module may import only " \
                    f"{sorted(ALLOWED[layer(module)])}"
    # the package's flat API (kdlab/__init__) loads every layer; a module inside must not go through it
    assert layer(module) == "bench" or "kdlab" not in GRAPH[module], f"{module} imports the top-level package; import the module it needs"


def test_nothing_outside_the_benchmark_imports_it():
    users = sorted(m for m, ts in GRAPH.items() if layer(m) != "bench" and any(layer(t) == "bench" for t in ts))
    assert not users, f"{users} import kdlab.bench; the benchmark is a developer tool, outside the package's layers"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    # package __init__ files re-export their children; their edges to children are not cycles
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
