"""The house rule for real tests, in one place: what a test needs is missing -> it skips, except
with ``CI=true``, where the same test FAILS (CI must never pass by skipping the real thing)."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Fail under ``CI=true``, skip elsewhere; ``reason`` says what is missing and how to get it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def require_binary(*names: str, missing: str) -> str:
    """The path of the first of ``names`` on PATH, or ``unavailable(missing)``."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    unavailable(missing)
