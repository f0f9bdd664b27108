"""No import cycles among the product modules (forensics/, gallery/).

Every import counts: at module level, inside functions (a lazy import does not remove a
dependency, it only hides it) and under ``if TYPE_CHECKING``. ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forensics", "gallery")

#: cycles that exist today and are being removed (each an exact set of modules); any other
#: cycle, or one of these growing, fails the test
KNOWN_CYCLES: set[frozenset[str]] = set()  # none: any cycle fails the test


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The product modules one import statement reaches."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    package = module if is_package else module.rpartition(".")[0]
    if node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """module -> the product modules it imports (anywhere in its code)."""
    files = {_module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = {t for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for t in _imported(node, module, path.name == "__init__.py", modules)}
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_product_modules():
    graph = import_graph(ROOT)
    assert "forensics.models.registry" in graph and "gallery.records" in graph
    new = cycles(graph) - KNOWN_CYCLES
    assert not new, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)


def test_the_check_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "forensics"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "a.py").write_text("from . import b\n")
    (pkg / "models" / "b.py").write_text("def f():\n    from forensics.models.a import g\n")
    (pkg / "c.py").write_text("from forensics.models import a\n")
    graph = import_graph(tmp_path, ("forensics",))
    assert graph["forensics.models.a"] == {"forensics.models.b"}
    assert graph["forensics.c"] == {"forensics.models.a"}
    assert cycles(graph) == {frozenset({"forensics.models.a", "forensics.models.b"})}


def test_query_code_does_not_import_training():
    """Only the training package itself, and the CLI's train-inverter command, import forensics.training."""
    graph = import_graph(ROOT)
    users = {m for m, targets in graph.items() if not m.startswith("forensics.training")
             and any(t.startswith("forensics.training") for t in targets)}
    assert users == {"forensics.cli"}
