"""The package layout is the architecture (docs/architecture.md), and these tests keep it so.

Imports point one way: each part of ``feedgate`` may import only the parts listed for it in ``MAY_IMPORT``,
no module imports in a circle, and SQL is written only in ``store/``. Imports made for the type checker
alone (under ``if TYPE_CHECKING:``) do not count: they do not run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import feedgate

PACKAGE = Path(feedgate.__file__).parent

# A part is a folder of feedgate/ or one of its top-level modules. The table is a picture of the layers:
# every part may import the parts listed beside it, and itself.
MAY_IMPORT: dict[str, set[str]] = {
    "__main__": {"cli"},
    "cli": {"commands", "app", "workers", "ops", "config", "errors"},
    "commands": {"analysis", "demo", "logrows", "store", "config", "errors"},
    "app": {
        "api",
        "console",
        "middleware",
        "proxy",
        "upstream",
        "logrows",
        "store",
        "ops",
        "widget",
        "appkeys",
        "request_ids",
        "feedback_tokens",
        "workers",
        "config",
    },
    "middleware": {"proxy", "appkeys", "request_ids", "feedback_tokens", "config", "errors"},
    "console": {"api", "analysis", "store", "appkeys", "request_ids", "config", "errors"},
    "api": {"analysis", "logrows", "store", "appkeys", "request_ids", "feedback_tokens", "config", "errors"},
    "analysis": {"store", "config", "errors"},
    "proxy": {"upstream", "logrows", "store", "appkeys", "config", "errors"},
    "upstream": {"errors"},
    "workers": {"proxy", "store", "config", "errors"},
    "demo": {"logrows", "store"},
    "logrows": {"store", "config", "errors"},
    "store": {"config", "errors"},
    "ops": {"appkeys"},
    "widget": {"appkeys"},
    "request_ids": {"errors"},
    "feedback_tokens": {"errors"},
    "appkeys": set(),
    "config": {"errors"},
    "errors": set(),
}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))\b", re.S)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


MODULES = dict(modules())


def part_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def runtime_imports(path: Path) -> set[str]:
    """The feedgate modules a module imports when it runs, wherever the import stands."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("feedgate"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("feedgate"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {module: runtime_imports(path) for module, path in MODULES.items()}


def test_every_part_is_placed_in_the_layers() -> None:
    unplaced = {part_of(module) for module in MODULES if module != "feedgate"} - set(MAY_IMPORT)
    assert not unplaced, f"add these parts to MAY_IMPORT (and docs/architecture.md): {sorted(unplaced)}"


def test_the_layers_themselves_have_no_circle() -> None:
    assert not _cycles({part: set(allowed) for part, allowed in MAY_IMPORT.items()})


def test_imports_point_down_the_layers() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, imported_modules in GRAPH.items()
        for imported in sorted(imported_modules)
        if module != "feedgate"
        and part_of(imported) != part_of(module)
        and part_of(imported) not in MAY_IMPORT.get(part_of(module), set())
    ]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_module_imports_in_a_circle() -> None:
    assert not _cycles(GRAPH), "modules importing each other (directly or around a circle)"


def test_sql_is_written_only_in_the_store() -> None:
    outside = [
        f"{module}:{node.lineno}"
        for module, path in MODULES.items()
        if part_of(module) != "store"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    assert not outside, f"SQL outside store/: {outside}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node, or a node importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found
