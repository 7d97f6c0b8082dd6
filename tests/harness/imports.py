"""The suite's packages import each other one way: no module imports a module that imports it.

The graph holds every import statement of the installed packages, the ones inside functions too (a
function-level import that closes a cycle only hides it), except those under ``if TYPE_CHECKING:``.
An import of ``a.b.c`` is an edge to the module ``a.b.c``; ``from a.b import name`` is an edge to
``a.b.name`` when that is a module, else to ``a.b``.
"""

from __future__ import annotations

import ast
import importlib.util
import os

PACKAGES = ("mobilebert_common", "conversion", "mobilebert_pt", "mobilebert_tf", "mobilebert_cli")


def _modules() -> dict:
    """{module name: source path} of every module of the packages, found where they are installed."""
    found = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        root = os.path.dirname(spec.origin)
        for folder, _, files in os.walk(root):
            for file in files:
                if not file.endswith(".py"):
                    continue
                parts = os.path.relpath(os.path.join(folder, file), root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join([package, *parts])] = os.path.join(folder, file)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(module: str, path: str, modules: dict) -> set:
    """The modules of the suite that ``module`` imports anywhere in its source."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets = set()

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                targets.add(child if child in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {t for t in targets if t in modules and t != module}


def _cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def connect(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return result


def import_graph() -> dict:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}
