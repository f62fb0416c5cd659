"""The core does no I/O (DESIGN.md): nothing under novacron/ outside the
application layer (novacron/app/) imports a runtime or I/O module, uses module-level random, or
reads the wall clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "novacron"
BANNED_MODULES = {"simpy", "asyncio", "libvirt", "redis", "socket", "time", "threading", "subprocess"}
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}
APPLICATION_LAYER = "app"


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if p.relative_to(CORE).parts[0] != APPLICATION_LAYER)


def violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in BANNED_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "random":
                    found.append(f"line {node.lineno}: import random (use an injected random.Random)")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in BANNED_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            if root == "random" and any(a.name != "Random" for a in node.names):
                found.append(f"line {node.lineno}: from random import module-level functions")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            name = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}() reads the wall clock")
    return found


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_module_does_no_io(path: Path) -> None:
    assert violations(ast.parse(path.read_text())) == []


def test_checker_catches_banned_imports() -> None:
    bad = "import time\nfrom asyncio import sleep\nimport random\nfrom random import choice\n" \
          "import datetime\nx = datetime.datetime.now()\n"
    assert len(violations(ast.parse(bad))) == 5
    assert violations(ast.parse("from random import Random\nimport numpy\n")) == []
