"""The boundary, as a test (DESIGN.md "the core does no I/O"; README "Where things live").

Three rules, checked on the source with ``ast`` (every import counts, also one inside a function):

1. The algorithm packages -- ``novacron/raft``, ``bft``, ``scheduler``, ``cache``, ``migration``,
   ``cluster``, ``storage``, ``anomaly``, ``events.py``, ``slo.py``, ``seeding.py``, ``telemetry.py``,
   ``health.py`` -- and every ``novacron`` module they import, however indirectly, import nothing
   that does I/O: no runtime (simpy, asyncio, socket, time, threading, libvirt, redis, subprocess),
   no file or format module (pathlib, os, io, json, tomllib, csv, pyarrow, pandas, matplotlib,
   sqlite3, importlib.resources, ...), no ``open()``, nothing from the
   application layer.
2. Nothing under ``novacron/`` outside the application layer (``novacron/app/``) imports a runtime
   or I/O module of the first kind, uses module-level ``random`` or reads the wall clock.
3. Only the composition roots import a runtime package (``sim`` or ``backends``): the CLI
   (``novacron/app/cli.py``) and the pytest plugin (``novacron/app/pytest_plugin.py``, the entry
   point pytest loads to run a scenario in users' tests). Both import the runtime lazily, inside
   the command or fixture that needs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "novacron"
ALGORITHM = ("raft", "bft", "scheduler", "cache", "migration", "cluster", "storage", "anomaly", "events.py",
             "slo.py", "seeding.py", "metrics.py", "telemetry.py", "health.py")
APPLICATION_LAYER = "app"
COMPOSITION_ROOTS = {"app/cli.py", "app/pytest_plugin.py", "app/runtimes.py"}
RUNTIME_PACKAGES = {"sim", "backends"}
RUNTIME_IO = {"simpy", "asyncio", "libvirt", "redis", "socket", "time", "threading", "subprocess", "multiprocessing",
              "selectors", "signal"}
FILE_IO = {"pathlib", "os", "io", "json", "tomllib", "csv", "pyarrow", "pandas", "matplotlib", "sqlite3",
           "importlib", "shutil", "tempfile", "glob", "pickle", "shelve", "sys", "logging", "zstandard", "gzip",
           "lzma", "bz2", "zipfile", "tarfile", "urllib", "http", "msgpack", "msgspec", "html", "xml", "sqlalchemy"}
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}


def rel(path: Path) -> str:
    return path.relative_to(CORE).as_posix()


def imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every imported module name with its line; ``from a import b`` yields ``a`` and ``a.b``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def root(name: str) -> str:
    return name.split(".")[0]


def runtime_violations(tree: ast.AST) -> list[str]:
    """Rule 2: runtime I/O modules, module-level random and the wall clock."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if root(alias.name) in RUNTIME_IO:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "random":
                    found.append(f"line {node.lineno}: import random (use an injected random.Random)")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if root(node.module) in RUNTIME_IO:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            if root(node.module) == "random" and any(a.name != "Random" for a in node.names):
                found.append(f"line {node.lineno}: from random import module-level functions")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            name = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}() reads the wall clock")
    return found


def io_violations(tree: ast.AST) -> list[str]:
    """Rule 1 on one module: no file/format module, no ``open()``, nothing from ``novacron.app``."""
    found = runtime_violations(tree)
    flagged: set[str] = set()
    for line, name in imports(tree):
        if root(name) in FILE_IO and root(name) not in RUNTIME_IO:
            flagged.add(f"line {line}: imports {root(name)} (I/O or a file format)")
        if name.startswith(f"novacron.{APPLICATION_LAYER}."):
            flagged.add(f"line {line}: imports the application layer (novacron.{APPLICATION_LAYER})")
        if root(name) in RUNTIME_PACKAGES:
            flagged.add(f"line {line}: imports the runtime {root(name)}")
    found.extend(sorted(flagged))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append(f"line {node.lineno}: open() reads or writes a file")
    return found


def runtime_imports(tree: ast.AST) -> list[str]:
    """Rule 3 on one module: imports of ``sim`` or ``backends`` (top-level or in a function)."""
    return sorted({f"line {line}: imports {name.split('.')[0]}" for line, name in imports(tree)
                   if root(name) in RUNTIME_PACKAGES})


def module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "novacron":
        return None
    base = CORE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def algorithm_closure() -> list[Path]:
    """The algorithm modules and every ``novacron`` module (and package ``__init__``) they import."""
    todo = [p for entry in ALGORITHM for p in ((CORE / entry).rglob("*.py") if (CORE / entry).is_dir()
                                                else [CORE / entry])]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for parent in path.relative_to(CORE).parents:
            init = CORE / parent / "__init__.py"
            if init.is_file():
                todo.append(init)
        for _, name in imports(ast.parse(path.read_text())):
            target = module_file(name)
            if target is not None:
                todo.append(target)
    return sorted(seen)


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if rel(p).split("/")[0] != APPLICATION_LAYER)


@pytest.mark.parametrize("path", algorithm_closure(), ids=rel)
def test_algorithm_module_imports_nothing_that_does_io(path: Path) -> None:
    assert io_violations(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", core_files(), ids=rel)
def test_core_module_does_no_runtime_io(path: Path) -> None:
    assert runtime_violations(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=rel)
def test_only_the_composition_roots_import_a_runtime(path: Path) -> None:
    if rel(path) in COMPOSITION_ROOTS:
        return
    assert runtime_imports(ast.parse(path.read_text())) == [], (
        f"{rel(path)} imports a runtime; only {sorted(COMPOSITION_ROOTS)} may (README, 'Where things live')")


def test_composition_roots_import_runtimes_lazily() -> None:
    for name in COMPOSITION_ROOTS:
        tree = ast.parse((CORE / name).read_text())
        top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        assert runtime_imports(ast.Module(body=top_level, type_ignores=[])) == [], name


def test_the_algorithm_closure_covers_the_packages_and_what_they_use() -> None:
    names = {rel(p) for p in algorithm_closure()}
    assert {"raft/node.py", "scheduler/framework.py", "cache/hierarchy.py", "migration/controller.py",
            "cluster/state.py", "events.py", "slo.py", "seeding.py", "metrics.py", "streaming.py",
            "ports.py"} <= names
    assert not any(n.startswith(f"{APPLICATION_LAYER}/") for n in names)


def test_checkers_catch_planted_violations() -> None:
    bad = "import time\nfrom asyncio import sleep\nimport random\nfrom random import choice\n" \
          "import datetime\nx = datetime.datetime.now()\n"
    assert len(runtime_violations(ast.parse(bad))) == 5
    assert runtime_violations(ast.parse("from random import Random\nimport numpy\n")) == []
    planted_io = ("import json\nfrom pathlib import Path\nfrom importlib import resources\n"
                  "def f():\n    import pyarrow.parquet\n    return open('x')\n"
                  "from novacron.app.rundir import write_run\n")
    assert len(io_violations(ast.parse(planted_io))) == 6
    planted_runtime = "def run():\n    from sim.run import run_scenario\n    import backends.manager\n"
    assert runtime_imports(ast.parse(planted_runtime)) == ["line 2: imports sim", "line 3: imports backends"]
