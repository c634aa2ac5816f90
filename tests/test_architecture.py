"""The package structure (docs/ARCHITECTURE.md): no two of pgan's top-level packages and modules
import each other, directly or through others, counting imports inside functions."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pgan_cli"


def _unit(module: str) -> str | None:
    """The top-level package or module of ``pgan_cli.a.b``: ``a``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pgan_cli" else None


def _imported(path: Path, module: str) -> list[str]:
    """Every pgan module ``path`` imports, at module level or inside functions."""
    out = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                full = ".".join(base + ([node.module] if node.module else []))
            else:
                full = node.module or ""
            out += [f"{full}.{a.name}" for a in node.names] if full == "pgan_cli" else [full]
    return out


def import_graph() -> dict[str, dict[str, list[str]]]:
    """``{unit: {unit it imports: [files that do]}}`` over pgan_cli's top-level units."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        src = _unit(module) or _unit(module + ".__init__")
        for name in _imported(path, module):
            dst = _unit(name)
            if src and dst and dst != src and ((PACKAGE / dst).is_dir() or (PACKAGE / f"{dst}.py").is_file()):
                graph[src][dst].append(str(path.relative_to(PACKAGE.parent)))
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_packages():
    graph = import_graph()
    assert "gan" in graph["report"] and "gan" in graph["attacks"]  # the graph sees in-function imports
    found = cycles(graph)
    detail = [f"{a} -> {b} ({graph[a][b][0]})" for comp in found for a in comp for b in graph[a] if b in comp]
    assert found == [], detail


def test_the_check_finds_a_cycle():
    """The check itself: a planted two-unit cycle, and one through a third unit, are found."""
    assert cycles({"a": {"b": []}, "b": {"a": []}}) == [["a", "b"]]
    assert cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": []}, "b": {}}) == []


def test_the_library_never_imports_the_command_line():
    """pgan_cli.cli imports the library; nothing outside it (but the entry point) imports it."""
    graph = import_graph()
    users = sorted(src for src, dsts in graph.items() if "cli" in dsts and src not in ("cli", "entry", "__main__"))
    assert users == [], {u: graph[u]["cli"] for u in users}
