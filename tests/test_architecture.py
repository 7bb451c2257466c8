"""The package's shape: no import cycles (not even inside functions), short modules and
functions, documented public functions."""

from __future__ import annotations

import ast
from pathlib import Path

import napari_spine

PKG = Path(napari_spine.__file__).parent
MODULES = sorted(PKG.rglob("*.py"))


def _name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every napari_spine module ``path`` imports, at the top or inside a function."""
    mod = _name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    names = {_name(p) for p in MODULES}
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from . import x" imports the module x when there is one
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in names else stem for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in names and t != mod}
    return out


def _graph() -> dict[str, set[str]]:
    return {_name(p): _imports(p) for p in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, ignoring a package's imports of its own sub-modules (the package
    ``__init__`` re-exporting them is not a cycle: the sub-module never needs the package's
    re-exports)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph.get(m, ())):
            if m.startswith(dep + "."):  # a module importing its parent package: see below
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if state.get(dep) is None and (found := visit(dep)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if state.get(m) is None and (found := visit(m)):
            return found
    return None


def test_no_import_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_sub_modules_import_their_package_only_for_what_it_defines():
    # a sub-module importing its parent package gets the package's __init__: that must not
    # lead back to the sub-module (else the skip in _cycle would hide a real cycle)
    graph = _graph()
    for mod, deps in graph.items():
        for dep in deps:
            if mod.startswith(dep + "."):
                assert mod not in graph[dep], f"{mod} imports its package {dep}, which imports it"


def test_panel_modules_are_short():
    long = {str(p.relative_to(PKG)): n for p in (PKG / "_napari").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 350}
    assert not long, long


def _functions():
    for p in MODULES:
        lines = p.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield p, node, lines


def test_functions_are_short_or_say_why():
    long = []
    for p, node, lines in _functions():
        n = node.end_lineno - node.lineno + 1
        said = any("long:" in lines[i] for i in range(max(0, node.lineno - 3), node.lineno + 1))
        if n > 60 and not said:
            long.append(f"{p.relative_to(PKG)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "\n".join(long)


def test_public_functions_have_docstrings():
    missing = []
    for p in MODULES:
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for scope, prefix in [(tree.body, "")] + [
                (c.body, c.name + ".") for c in tree.body
                if isinstance(c, ast.ClassDef) and not c.name.startswith("_")]:
            for node in scope:
                if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and not node.name.startswith("_") and ast.get_docstring(node) is None):
                    missing.append(f"{p.relative_to(PKG)}:{node.lineno} {prefix}{node.name}")
    assert not missing, f"{len(missing)} public functions without a docstring:\n" + "\n".join(missing)
