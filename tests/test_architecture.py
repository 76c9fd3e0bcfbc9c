"""The package's modules depend on each other in one direction: no import cycles, not even
through an import tucked inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import django_vendor_notifications

PACKAGE = Path(django_vendor_notifications.__file__).parent


def package_imports(path: Path) -> set[str]:
    """The package's own modules that ``path`` imports, anywhere in the file."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1:
            module = node.module or ""
        elif (node.module or "").startswith(f"{PACKAGE.name}.") or node.module == PACKAGE.name:
            module = (node.module or "").removeprefix(PACKAGE.name).lstrip(".")
        else:
            continue
        if module:
            imported.add(module.split(".")[0])
        else:
            # from . import a, b
            imported.update(alias.name for alias in node.names)
    modules = {module.stem for module in PACKAGE.glob("*.py")}
    return imported & modules


def import_graph() -> dict[str, set[str]]:
    return {path.stem: package_imports(path) for path in PACKAGE.glob("*.py")}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path of module names, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            if found := visit(imported):
                return found
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if found := visit(module):
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert graph["services"] >= {"delivery", "signals", "models"}
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph) or [])
