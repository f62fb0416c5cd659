"""Fixtures for the cache tests: a real redis-server on a private port, stopped afterwards.

The server daemonizes with its pid file in ``$NOVACRON_TEST_STATE`` (set by scripts/test, whose
trap kills leftovers). Without redis-server the tests skip, unless CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"redis-server needed in CI: {reason}")
    pytest.skip(reason)


class RedisServer:
    """One redis-server process on loopback that a test may stop and start again."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logfile = state_dir / f"redis-{self.port}.log"
        self.pidfile = state_dir / f"redis-{self.port}.pid"
        self._pid: int | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server is not installed (apt-get install redis-server)")
        assert binary is not None
        subprocess.run([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--daemonize", "yes", "--pidfile", str(self.pidfile), "--logfile", str(self.logfile)],
                       check=True, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid = self._read_pidfile()
            if pid is not None and _alive(pid) and self._answers_ping():
                self._pid = pid
                return
            time.sleep(0.02)
        _unavailable(f"redis-server on port {self.port} did not start within 10 s; see {self.logfile}")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _read_pidfile(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Kill the server (SIGKILL: as abrupt as a crash) and wait until it is gone."""
        pid = self._pid or self._read_pidfile()
        self._pid = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
        self.pidfile.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (nothing may reap daemons here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _state_dir() -> Path:
    configured = os.environ.get("NOVACRON_TEST_STATE")
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "novacron-test-state"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _running_redis() -> Iterator[RedisServer]:
    """A started server, stopped afterwards also when the test fails."""
    server = RedisServer(_state_dir())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _running_redis()


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill and restart it."""
    yield from _running_redis()
