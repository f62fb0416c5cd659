"""The house rule for real tests, in one place: what a test needs is missing -> it skips, except
with ``CI=true``, where the same test FAILS (CI must never pass by skipping the real thing)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest

from backends.manager.netns import RigUnavailable


def unavailable(reason: str) -> NoReturn:
    """Fail under ``CI=true``, skip elsewhere; ``reason`` says what is missing and how to get it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def rig_needed(rig: str) -> Iterator[None]:
    """Runs the block; if ``rig`` cannot be built there (``RigUnavailable``), the test is
    ``unavailable``, with the rig's own reason."""
    try:
        yield
    except RigUnavailable as exc:
        unavailable(f"{rig} cannot be built here: {exc}")


def require_binary(*names: str, missing: str) -> str:
    """The path of the first of ``names`` on PATH, or ``unavailable(missing)``."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    unavailable(missing)
