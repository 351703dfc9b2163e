"""The package's import graph has no cycle and points only down the declared layers (every import
statement, module level or not, counts)."""
from __future__ import annotations

import ast
from pathlib import Path

import streamvae

SRC = Path(streamvae.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (c := visit(t)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "streamvae.registry" in graph["streamvae.cli"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


# The layers, lowest first: a module may import its own layer and the ones below, never one above.
# Training (learners) sits below evaluation; memories never see the models; reports read run files.
LAYERS = [
    ("_version", "errors"),
    ("utils", "devices", "threads", "precision", "carry"),
    ("config",),
    ("data",),
    ("native",),
    ("models",),
    ("memory",),
    ("learners",),
    ("evaluation",),
    ("registry", "sizes"),
    ("catalog", "provenance"),  # shipped configs by name; budget labels checked against them (report, compare)
    ("report",),
    ("live", "observers", "rundir", "run_directory", "grids"),
    ("loop", "migrate", "costs"),
    ("api", "demo", "sweep", "reproduce", "cli", "__main__", ""),  # "": the package's __init__
]


def layer_of(module: str) -> int:
    """The layer of ``streamvae.a.b`` (its first part after ``streamvae``); a module no layer names is an error."""
    rest = module.split(".")[1:]
    top = rest[0] if rest else ""
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_imports.py: add it to LAYERS")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if layer_of(t) > layer_of(m))


def test_imports_point_only_down_the_layers():
    graph = import_graph()
    assert upward_imports(graph) == []


def test_an_upward_import_is_found():
    assert upward_imports({"streamvae.learners.ocm": {"streamvae.evaluation.likelihood"}}) == [
        "streamvae.learners.ocm -> streamvae.evaluation.likelihood"]
    assert upward_imports({"streamvae.evaluation.points": {"streamvae.models.bounds"}}) == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
