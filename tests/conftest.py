"""Shared test settings: Hypothesis profiles (CI runs more examples, deterministically), and
``fast_dir`` for property tests of the log stores."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="module")
def fast_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tmpfs when there is one: a property test of a log store checks logic, fsync cost would only
    slow it down."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("prop")
        return
    made = Path(tempfile.mkdtemp(dir=shm, prefix="novacron-logstore-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)
