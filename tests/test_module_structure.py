"""Structure checked with ``ast``: no import cycles, no module-level mutable state in ``sim/``.

An import cycle (top-level or inside a function) means two modules each need the other: the
usual dodge, a function-level import, hides it until the import order changes. Module-level
mutable state (a registry dict, a list of components, a flag a benchmark flips) is shared by
every run in the process; the run's services are built by the composition root instead.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Collection
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("novacron", "sim", "backends")

IMMUTABLE_CALLS = frozenset({"frozenset", "tuple", "MappingProxyType", "TypeVar", "ParamSpec", "NewType",
                             "namedtuple", "NamedTuple", "field", "range", "float", "int", "str", "bool",
                             "Path", "compile", "getLogger", "partial"})
"""Calls whose result is immutable (or a logger), allowed at module level in ``sim/``."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST, module: str, is_package: bool, known: Collection[str]) -> set[str]:
    """Modules imported at run time anywhere in the file (``if TYPE_CHECKING:`` blocks excluded).
    ``from package import submodule`` is an edge to the submodule (``known`` modules), not the package."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                         for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = _runtime_imports(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
        # ``import a.b.c`` runs a, a.b and a.b.c; a package's __init__ is an edge only if it imports.
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first = last), or ``None``."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt):], nxt]
            if colour[nxt] == white and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(graph):
        if colour[node] == white and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_cycle_in_novacron_sim_or_backends() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_and_relative_imports_are_edges() -> None:
    tree = ast.parse("def f():\n    from sim import run\n    from . import x\nif TYPE_CHECKING:\n    import y\n")
    known = {"sim", "sim.run", "sim.pkg", "sim.pkg.x", "sim.pkg.mod"}
    assert _runtime_imports(tree, "sim.pkg.mod", False, known) == {"sim.run", "sim.pkg.x"}


def _frozen_classes(tree: ast.Module) -> set[str]:
    """Classes of the module declared ``@dataclass(frozen=True, ...)``: their instances are immutable."""
    frozen: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and any(k.arg == "frozen" and isinstance(k.value, ast.Constant)
                                                      and k.value.value is True for k in deco.keywords):
                    frozen.add(node.name)
    return frozen


def _imported_frozen_classes(tree: ast.Module) -> set[str]:
    """Names imported with ``from M import N`` where N is a frozen dataclass of M (e.g. the
    core's ``CalibrationProfile`` used for a module-level constant in ``sim/``)."""
    frozen: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                module = importlib.import_module(node.module)
            except ImportError:
                continue
            for alias in node.names:
                obj = getattr(module, alias.name, None)
                params = getattr(obj, "__dataclass_params__", None)
                if isinstance(obj, type) and params is not None and params.frozen:
                    frozen.add(alias.asname or alias.name)
    return frozen


def _mutable_module_state(tree: ast.Module) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    allowed = IMMUTABLE_CALLS | _frozen_classes(tree) | _imported_frozen_classes(tree)
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        if value is not None and _is_mutable(value, allowed):
            names = ", ".join(ast.unparse(t) for t in targets)
            found.append((node.lineno, f"{names} = {ast.unparse(value)[:60]}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append((node.lineno, "global " + ", ".join(node.names)))
    return found


def _is_mutable(value: ast.expr, allowed: frozenset[str]) -> bool:
    if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name not in allowed
    return False


def test_no_module_level_mutable_state_in_sim() -> None:
    offenders = [f"{path.relative_to(REPO)}:{line}: {what}"
                 for path in sorted((REPO / "sim").rglob("*.py"))
                 for line, what in _mutable_module_state(ast.parse(path.read_text()))]
    assert not offenders, "module-level mutable state in sim/:\n" + "\n".join(offenders)


@pytest.mark.parametrize("source", [
    "_REGISTRY: dict[int, str] = {}", "COMPONENTS = [f, g]", "SEEN = set()", "CACHE = dict()",
    "def f():\n    global FLAG\n    FLAG = False", "_SERVICES = defaultdict(list)",
])
def test_the_module_state_check_catches_a_planted_registry(source: str) -> None:
    assert _mutable_module_state(ast.parse(source))


@pytest.mark.parametrize("source", [
    "COMPONENTS = (f, g)", "NAMES = frozenset({'a'})", "VIEW = MappingProxyType({'a': 1})", "E = TypeVar('E')",
    "LIMIT_S = 1e-9", "Alias = Callable[[int], None]",
    "@dataclass(frozen=True)\nclass C:\n    x: int = 0\n\n\nDEFAULT = C()",
])
def test_the_module_state_check_allows_immutables(source: str) -> None:
    assert not _mutable_module_state(ast.parse(source))
