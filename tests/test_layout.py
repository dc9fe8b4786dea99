"""The package's shape: no import cycle between keras_seq's modules, read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_seq"


def module_imports() -> dict[str, set[str]]:
    """Each keras_seq module -> the keras_seq modules it imports anywhere (function-level imports included)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                       else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            for target in targets:
                while target not in names and "." in target:  # `from keras_seq.x import name`: the module x
                    target = target.rsplit(".", 1)[0]
                if target in names and target != name and target != "keras_seq":
                    found.add(target)
        graph[name] = found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_keras_seq_modules():
    graph = module_imports()
    assert {"keras_seq.runs", "keras_seq.export", "keras_seq.safety"} <= set(graph)
    assert "keras_seq.safety" in graph["keras_seq.runs"]  # function-level imports are seen
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
