"""Fleuve's import graph: no cycle among its modules, and connectors below the loader.

The graph is read from the source with `ast`, without importing anything. An edge A → B is an
import of B in A's module body: at the top level, in `if`/`try`/`with` blocks and class bodies,
and under `if TYPE_CHECKING:` too (a type-only import names a dependency all the same).
Imports inside functions are left out of the cycle check: they run late, when every module is
loaded, and keep optional or heavy dependencies lazy. `from package import name` is an edge to
`package.name` when that is a module, else to the package; the implicit import of a module's
parent packages is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _modules() -> dict[str, Path]:
    """Every module of the `fleuve` package by dotted name (a package by its own name)."""
    out = {}
    for path in sorted((SRC / "fleuve").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(body: list[ast.stmt], *, in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements `body` runs when the module is imported (and in its functions)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if in_functions:
                yield from _imports(node.body, in_functions=in_functions)
        else:
            for block in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, block, None)
                if isinstance(inner, list):
                    yield from _imports(inner, in_functions=in_functions)
            for case in getattr(node, "cases", None) or []:
                yield from _imports(case.body, in_functions=in_functions)


def _targets(
    module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]
) -> Iterator[str]:
    """The Fleuve modules one import statement depends on."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    for name in names:
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        if name in modules and name != module:
            yield name


def import_graph(*, in_functions: bool = False) -> dict[str, set[str]]:
    """Each Fleuve module → the Fleuve modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = {
            target
            for node in _imports(tree.body, in_functions=in_functions)
            for target in _targets(module, path, node, modules)
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
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
            visit(node)
    return found


def _path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One cycle through `component`, as `a → b → a`, for the failure message."""
    members = set(component)
    trail = [component[0]]
    while True:
        nxt = min(graph[trail[-1]] & members)
        if nxt in trail:
            return " → ".join([*trail[trail.index(nxt) :], nxt])
        trail.append(nxt)


def test_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_path(graph, c) for c in found)


def test_cycles_are_found_through_type_only_imports_not_through_functions() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == "a → b → c → a"
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from x import y\n"
        "def f():\n    from z import w\n"
    )
    body = ast.parse(source).body
    found = [n.module for n in _imports(body, in_functions=False) if isinstance(n, ast.ImportFrom)]
    assert found == ["typing", "x"]


def test_connectors_import_nothing_of_the_loader() -> None:
    # Connectors read sources; loading into bronze builds on them. Imports inside functions
    # count here: a deferred import upward is still a connector knowing its caller.
    allowed = ("fleuve.ingest.connectors", "fleuve.ingest.errors", "fleuve.ingest.names")
    allowed += ("fleuve.ingest.schema",)
    upward = {
        f"{module} → {target}"
        for module, targets in import_graph(in_functions=True).items()
        if module.startswith("fleuve.ingest.connectors")
        for target in targets
        if target.startswith("fleuve.ingest") and not target.startswith(allowed)
    }
    assert not upward, sorted(upward)


# Each layer keeps its own errors module, all deriving from `fleuve.errors`' bases: one interface.
SHARED_BASE_NAMES = {"__init__", "errors"}


def test_no_two_modules_share_a_name() -> None:
    by_name: dict[str, list[str]] = {}
    for dotted in _modules():
        path = _modules()[dotted]
        by_name.setdefault(path.stem, []).append(dotted)
    shared = {n: m for n, m in by_name.items() if len(m) > 1 and n not in SHARED_BASE_NAMES}
    assert not shared, f"modules sharing a name (rename one to say what it holds): {shared}"


# Packages from the ground up: a module may import its own package and those listed before it.
LAYERS = [
    ("private", "errors", "masking", "triggers", "config"),
    ("lake", "metadata", "plugins", "logs"),
    ("security", "transform", "project"),
    ("ingest", "engine", "observe"),
    ("dashboards", "pipeline"),
    ("schedule",),
    ("serve",),
    ("cli",),
    ("demo", "reference", "__main__"),
]


def test_no_import_runs_back_up_the_layers() -> None:
    rank = {name: i for i, names in enumerate(LAYERS) for name in names}
    modules = _modules()
    tops = {d.split(".")[1] for d in modules if "." in d}
    upward = []
    for dotted, path in modules.items():
        top = dotted.split(".")[1] if "." in dotted else None
        if top is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree.body, in_functions=True):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif node.module == "fleuve":  # `from fleuve import triggers`
                names = [f"fleuve.{a.name}" for a in node.names if a.name in tops]
            else:
                names = [node.module or ""]
            for name in names:
                parts = (name or "").split(".")
                if parts[0] != "fleuve" or len(parts) < 2 or parts[1] == top:
                    continue
                assert parts[1] in rank, f"{parts[1]} is in no layer of LAYERS"
                if rank[parts[1]] > rank[top]:
                    upward.append(f"{dotted} imports {name}")
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)
