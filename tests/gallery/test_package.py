"""gallery/__init__.py and the package layout: its modules import each other one way only."""

from __future__ import annotations

import ast
from pathlib import Path

import gallery

PACKAGE = Path(gallery.__file__).parent


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _gallery_imports(path: Path) -> set[str]:
    """The gallery modules ``path`` imports, at module level or inside functions (a lazy import
    is still a dependency); imports only for type checkers are left out."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):
                continue
            if isinstance(child, ast.ImportFrom) and child.level == 1:
                found.update([child.module] if child.module else [a.name for a in child.names])
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("gallery."):
                found.add(child.module.split(".")[1])
            elif isinstance(child, ast.Import):
                found.update(a.name.split(".")[1] for a in child.names if a.name.startswith("gallery."))
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {m: _gallery_imports(PACKAGE / f"{m}.py") & modules for m in modules}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (empty when there is none)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(m: str) -> list[str]:
        state[m] = "open"
        stack.append(m)
        for dep in sorted(graph[m]):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := walk(dep)):
                return found
        stack.pop()
        state[m] = "done"
        return []

    for m in sorted(graph):
        if m not in state and (found := walk(m)):
            return found
    return []


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_gallery_modules_import_one_way():
    graph = _graph()
    assert "repository" in graph["db"] and "db" not in graph["repository"]
    assert _cycle(graph) == []


def test_storage_parts_depend_on_the_transaction_helper_not_on_db():
    graph = _graph()
    for part in ("subjects", "enrollment", "vectors", "queries", "repository", "audit"):
        assert "transaction" in graph[part] or "transaction" in set().union(*(graph[d] for d in graph[part]))
        assert "db" not in graph[part], part


def test_no_module_over_700_lines():
    long = {p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text().splitlines())) > 700}
    assert long == {}
