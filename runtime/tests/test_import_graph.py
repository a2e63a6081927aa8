"""The package is layered: no module imports, directly or through others, a module importing it.

Every import of the package's own modules counts, deferred ones inside functions and those under
`TYPE_CHECKING` included: a cycle hidden by a deferred import is still a cycle in the design, and
breaks as soon as someone moves the import to the top of the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = next(path.parent.name for path in SRC.glob("*/__init__.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in (SRC / PACKAGE).rglob("*.py")}


def resolve(importer: str, node: ast.ImportFrom) -> list[str]:
    """The package modules an `import`/`from ... import` of module `importer` loads."""
    if node.level:
        is_package = MODULES[importer].name == "__init__.py"
        base = importer.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    # `from . import x` names a submodule x when there is one.
    candidates = [f"{target}.{alias.name}" for alias in node.names]
    found = [name for name in candidates if name in MODULES]
    return found or ([target] if target in MODULES else [])


def imports_of(name: str) -> set[str]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            targets.update(resolve(name, node))
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in MODULES)
    targets.discard(name)
    return targets


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the list of its modules (first repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    # The walk found the package's own imports (a parser that found none would pass vacuously).
    assert sum(len(targets) for targets in graph.values()) > len(MODULES)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_names_the_modules_of_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
