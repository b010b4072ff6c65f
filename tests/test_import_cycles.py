"""The artifacts package imports one way: no module imports, even inside a function,
a module that imports it back (artifact.py once imported run.py, now runs.py, inside save())."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "artifacts"


def imported_modules(source: str, modules: set[str]) -> set[str]:
    """The modules of the package (by name: ``runs``) that ``source`` imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.removeprefix("artifacts.")] if node.level == 0 else []
        elif isinstance(node, ast.Import):
            names = [a.name.removeprefix("artifacts.") for a in node.names]
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in modules)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path of modules that closes it."""
    found, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                found.append(path[path.index(target) :] + [target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return found


def package_graph(directory: Path) -> dict[str, set[str]]:
    # __init__ imports its names lazily by string (importlib), on first use: not a cycle.
    files = {p.stem: p for p in directory.glob("*.py") if p.stem != "__init__"}
    modules = set(files)
    return {m: imported_modules(p.read_text(encoding="utf-8"), modules) for m, p in files.items()}


def test_the_cycle_finder_sees_an_import_inside_a_function() -> None:
    a = "from .b import x\n"
    b = "def f():\n    from . import a\n"
    graph = {m: imported_modules(src, {"a", "b"}) for m, src in {"a": a, "b": b}.items()}
    assert cycles(graph) == [["a", "b", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_artifacts_package_has_no_import_cycle() -> None:
    graph = package_graph(PACKAGE)
    assert {"artifact", "runs", "draft", "saver", "lineage"} <= set(graph)
    assert cycles(graph) == []
