"""The structure the team agreed on, checked: layers import only to their left (Python
modules and templates), no import cycle between modules, no module over 500 lines, and
every public write in a services module is a ``@service``."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: each layer may use only the layers before it.
LAYERS = ["portal", "changes", "maintenance", "dbops", "compliance", "api"]
RANK = {name: n for n, name in enumerate(LAYERS)}
MAX_LINES = 500


def _apps() -> list[str]:
    return [name for name in LAYERS if (ROOT / name / "__init__.py").exists()]


def _modules() -> dict[str, Path]:
    found = {}
    for app in _apps():
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Project modules a file imports (``from pkg import submodule`` names the submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:
        # if/try blocks at module level count; function bodies do not.
        nodes = [n for top in tree.body for n in ast.walk(top) if not _in_function(top, n)]
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in MODULES else node.module)
    return {n for n in names if n.split(".")[0] in RANK}


def _in_function(top: ast.AST, node: ast.AST) -> bool:
    if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if isinstance(top, ast.ClassDef):
        return any(
            node in ast.walk(f)
            for f in top.body
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
    return False


def test_no_module_imports_a_layer_to_its_right():
    wrong = []
    for name, path in MODULES.items():
        own = RANK[name.split(".")[0]]
        for imported in _imports(path, module_level_only=False):
            if RANK[imported.split(".")[0]] > own:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))


def _template_owner(path: Path) -> str:
    parts = path.relative_to(ROOT / "templates").parts
    return parts[0] if len(parts) > 1 and parts[0] in RANK else "portal"


TEMPLATE_REFS = re.compile(
    r"""\{%\s*(?:include|extends)\s+["'](?P<tpl>[^"']+)["']"""
    r"""|\{%\s*url\s+["'](?P<ns>[\w-]+):"""
)


def _namespace_owner(namespace: str) -> str | None:
    return {"calendar": "maintenance", "admin": "portal"}.get(
        namespace, namespace if namespace in RANK else None
    )


def _tag_libraries() -> dict[str, str]:
    libraries = {}
    for app in _apps():
        for path in (ROOT / app).rglob("templatetags/*.py"):
            if path.stem != "__init__":
                libraries[path.stem] = app
    return libraries


def test_no_template_loads_a_layer_to_its_right():
    libraries = _tag_libraries()
    wrong = []
    for path in (ROOT / "templates").rglob("*.html"):
        own = RANK[_template_owner(path)]
        text = path.read_text(encoding="utf-8")
        for match in TEMPLATE_REFS.finditer(text):
            if match["tpl"]:
                owner = match["tpl"].split("/")[0] if "/" in match["tpl"] else "portal"
            else:
                owner = _namespace_owner(match["ns"])
            if owner in RANK and RANK[owner] > own:
                wrong.append(f"{path.relative_to(ROOT)} uses {match.group(0)}")
        for load in re.findall(r"\{%\s*load\s+([\w\s]+?)\s*%\}", text):
            for library in load.split():
                owner = libraries.get(library)
                if owner and RANK[owner] > own:
                    wrong.append(f"{path.relative_to(ROOT)} loads {library} ({owner})")
    assert not wrong, "\n".join(sorted(wrong))


def test_there_is_no_import_cycle_between_modules():
    graph = {
        name: _imports(path, module_level_only=True) & set(MODULES)
        for name, path in MODULES.items()
    }
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert not cycles, cycles


def test_no_module_is_longer_than_500_lines():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


# Shared internals of a services package, not services themselves: the versioned save,
# the notices and the approval engine that the services call.
SERVICE_KITS = {"changes.services.common", "changes.services.decisions", "dbops.services.common"}
SERVICE_MODULES = sorted(
    name
    for name in MODULES
    if (".services" in name or name.endswith("services")) and name not in SERVICE_KITS
)


@pytest.mark.parametrize("module_name", SERVICE_MODULES)
def test_every_public_write_is_a_service(module_name):
    """A public function of a services module is a ``@service``: it has its transaction
    boundary and its refusals are audited (portal.transactions)."""
    module = importlib.import_module(module_name)
    missing = [
        name
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module_name
        and not name.startswith("_")
        and not getattr(fn, "portal_service", False)
    ]
    assert not missing, f"{module_name}: not @service: {', '.join(missing)}"
