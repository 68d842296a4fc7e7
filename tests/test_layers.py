"""The shape of tfreview/ (issue 17): the import graph has no circle, and nothing below the use cases imports one.

Read from the source with `ast` (every `import` and `from ... import`, at module level or inside a function: a lazy
import is still a dependency), so the check costs no imports and sees what a reader sees."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tfreview"
# The layers above the base: the command line calls the use cases, the use cases call everything below.
UPPER = ("tfreview.cli", "tfreview.usecases", "tfreview.__main__", "tfreview.launch")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The tfreview module `name` lives in (a package's `__init__`, or the module itself); None outside tfreview."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                found = _resolve(target, modules) if target.startswith("tfreview") else None
                if found and found != mod and not (path.name == "__init__.py" and found.startswith(mod + ".")):
                    graph[mod].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _upper(mod: str) -> bool:
    return any(mod == u or mod.startswith(u + ".") for u in UPPER)


def test_the_import_graph_of_tfreview_has_no_circle():
    assert _cycles(import_graph()) == []


def test_nothing_below_the_use_cases_imports_a_use_case_or_the_cli():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() if not _upper(m)
                    for t in targets if _upper(t))
    assert upward == []


def test_the_use_cases_never_import_the_cli():
    graph = import_graph()
    assert sorted(f"{m} -> {t}" for m in graph if m.startswith("tfreview.usecases")
                  for t in graph[m] if t.startswith("tfreview.cli")) == []


def test_the_check_sees_a_circle_and_an_upward_import():
    """The checks above are only worth something if they can fail."""
    graph = {"tfreview.a": {"tfreview.b"}, "tfreview.b": {"tfreview.a"}, "tfreview.c": set()}
    assert _cycles(graph) == [["tfreview.a", "tfreview.b"]]
    real = import_graph()
    assert "tfreview.usecases.plan" in real and "tfreview.usecases.context" in real["tfreview.usecases.plan"]
    assert any(t.startswith("tfreview.usecases") for t in real["tfreview.cli.plan"])
