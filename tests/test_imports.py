"""The shape of the house: gptlib's imports flow one way.

Every ``import`` in gptlib (at the top of a module or inside a function) is read from the source and
turned into an edge between modules. The graph must have no cycle, and ``gptlib.model`` must stand
on nothing above it: only the modules it is built from (its configuration, the argument checks and
the settings they use).
"""
from __future__ import annotations

import ast
from pathlib import Path

GPTLIB = Path(__file__).resolve().parent.parent / "gptlib"
MODEL_MAY_IMPORT = {"gptlib.config", "gptlib.checks", "gptlib.settings"}


def module_name(path: Path) -> str:
    parts = path.relative_to(GPTLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: the gptlib modules it imports}``. ``from . import x`` is an edge to the submodule
    ``x`` when there is one; importing a submodule is not counted as importing its package's
    ``__init__`` (Python runs it first, but that is the package's business, not a dependency)."""
    files = {module_name(p): p for p in GPTLIB.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                           for alias in node.names]
            else:
                continue
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert {"gptlib.config", "gptlib.checks"} <= graph["gptlib.model"]
    assert "gptlib.train.trainer" in graph["gptlib.train"]
    assert "gptlib.train.distributed" in graph["gptlib.train.trainer"]  # from . import distributed
    assert "gptlib.train" in graph["gptlib.mup_experiments"]  # an import inside a function counts too
    assert "gptlib.viz.style" in graph["gptlib.viz.tokens"]  # from .style import ...


def test_gptlib_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_model_imports_nothing_above_it():
    above = import_graph()["gptlib.model"] - MODEL_MAY_IMPORT
    assert not above, f"gptlib.model imports {sorted(above)}, which stand above it"


def test_what_model_stands_on_does_not_reach_back_up():
    graph, seen, todo = import_graph(), set(), ["gptlib.model"]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen <= MODEL_MAY_IMPORT, sorted(seen - MODEL_MAY_IMPORT)
