"""Imports inside ``portal/`` run one way (STYLE.md item 11): no cycle, not even inside a function.

The graph is read from the syntax trees of ``portal/**/*.py``, so this needs no import and runs
in milliseconds. Every ``import``/``from … import`` counts, at module level and inside functions
and classes, except those under ``if TYPE_CHECKING:`` (types only, never run). An edge goes to
the module named (``from . import accounts`` -> ``portal.accounts``; ``from .store import Store``
-> ``portal.store``). The implicit import of a parent package's ``__init__`` is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portal"


def module_name(path: Path, root: Path = ROOT) -> str:
    """``portal/views/api.py`` -> ``portal.views.api``; ``portal/views/__init__.py`` ->
    ``portal.views`` (``path`` relative to ``root``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, skipping the body of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _imports_of(other)
            continue
        yield from _imports_of(child)


def _imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: {imported portal modules}}`` over every ``.py`` file under ``package``."""
    paths = sorted(package.rglob("*.py"))
    modules = {module_name(p, package.parent): p for p in paths}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".")
                    # A package's own __init__ is level 1 relative to itself.
                    drop = node.level - 1 if is_package else node.level
                    base = base[: len(base) - drop] if drop else base
                    prefix = ".".join(base)
                    stem = f"{prefix}.{node.module}" if node.module else prefix
                else:
                    stem = node.module or ""
                for alias in node.names:
                    sub = f"{stem}.{alias.name}"
                    targets.append(sub if sub in modules else stem)
            for target in targets:
                # ``import portal.views.api`` names the module itself; the longest known prefix
                # of a dotted name is the module imported.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, …, a]``, or ``None`` (depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == GREY:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == WHITE and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(graph):
        if colour[start] == WHITE and (found := visit(start)) is not None:
            return found
    return None


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The components of more than one module (Tarjan), each sorted: the tangles to report."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_walk_sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    """The graph builder itself: a cycle closed by a function-level import is found; one that
    only a ``TYPE_CHECKING`` block would close is not."""
    pkg = tmp_path / "portal"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import y\n"
    )
    (pkg / "d.py").write_text("import portal.c\n")
    graph = import_graph(pkg)
    assert graph["portal.b"] == {"portal.a"} and graph["portal.d"] == {"portal.c"}
    assert graph["portal.c"] == set()
    assert find_cycle(graph) == ["portal.a", "portal.b", "portal.a"]
    assert strongly_connected(graph) == [["portal.a", "portal.b"]]


#: Imports that close a cycle in a file another branch owns, each with who removes it. They are
#: left out of the graph, and must still be there: when one is gone, delete its entry here.
KNOWN_EDGES = {
    # views/proxy.py takes current_portal from portal.extension; it belongs to the proxy
    # performance work, which moves its import to portal.state.
    ("portal.views.proxy", "portal.extension"): "removed by the proxy performance work",
}


def test_no_import_cycle_in_portal() -> None:
    graph = import_graph()
    assert graph["portal.extension"], "the walk found no imports: the test reads nothing"
    for (source, target), why in KNOWN_EDGES.items():
        assert target in graph[source], (
            f"{source} no longer imports {target} ({why}): delete its KNOWN_EDGES entry"
        )
        graph[source].discard(target)
    cycle = find_cycle(graph)
    tangles = strongly_connected(graph)
    assert cycle is None, (
        "import cycle in portal/: "
        + " -> ".join(cycle)
        + "\nmodules in a cycle together:\n"
        + "\n".join(f"  {len(t)}: {', '.join(t)}" for t in tangles)
    )


#: The modules above the services: the package's public face, the extension, the app factory.
#: Only these (and the views) may import :mod:`portal.extension` or a view module.
TOP = frozenset({"portal", "portal.extension", "portal.service", "portal.__main__"})


def test_services_never_import_the_extension_or_a_view() -> None:
    """STYLE.md item 11: state and models at the bottom, services above them, views and the
    extension on top; a service reads the state from :mod:`portal.state`."""
    graph = import_graph()
    upward = {
        module: sorted(
            t for t in targets if t == "portal.extension" or t.startswith("portal.views")
        )
        for module, targets in graph.items()
        if module not in TOP and not module.startswith("portal.views")
    }
    assert {m: t for m, t in upward.items() if t} == {}
    assert graph["portal.state"] & {"portal.extension", "portal.views"} == set()
