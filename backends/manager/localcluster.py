"""Three (or N) real manager processes on loopback: what the tests and the benchmark start.

Each manager is ``python -m novacron manager ...`` in its own process with its own data
directory and free ports. Every started process is recorded in a pid file -- in
``$NOVACRON_TEST_STATE`` when set (``scripts/test`` kills what is left there on exit), else in the
cluster's base directory -- and ``close()`` kills every process it started, so a failing test
leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backends.manager.client import cluster_status
from backends.ports import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]


class LocalCluster:
    def __init__(self, base_dir: Path, size: int = 3, *, extra_args: tuple[str, ...] = (),
                 distinct_addresses: bool = False, repo_root: Path = REPO_ROOT, metrics: bool = False) -> None:
        """``distinct_addresses``: manager i listens and dials from 127.0.0.i, so a test can cut
        the traffic between managers by address (nftables) without touching the client ports.
        ``repo_root``: the source tree the managers run from (a benchmark compares two versions).
        ``metrics``: each manager also serves Prometheus metrics (``metrics_addresses``)."""
        self.base_dir = base_dir
        self.repo_root = repo_root
        self.ids = list(range(1, size + 1))
        ports = free_ports(2 * size)
        host = {i: f"127.0.0.{i}" if distinct_addresses else "127.0.0.1" for i in self.ids}
        self.raft_addresses = {i: (host[i], ports[k]) for k, i in enumerate(self.ids)}
        self.client_addresses = {i: (host[i], ports[size + k]) for k, i in enumerate(self.ids)}
        metrics_ports = free_ports(size) if metrics else []
        self.metrics_addresses = {i: (host[i], metrics_ports[k]) for k, i in enumerate(self.ids) if metrics}
        self.extra_args = extra_args
        self.origin_monotonic_s = time.monotonic()
        """Every manager's events count ``t_s`` from here, so their logs merge in time order."""
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        state = os.environ.get("NOVACRON_TEST_STATE")
        self.pid_dir = Path(state) if state else base_dir
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.mkdir(parents=True, exist_ok=True)

    def data_dir(self, manager_id: int) -> Path:
        return self.base_dir / f"manager-{manager_id}"

    def peers_arg(self) -> str:
        return ",".join(f"{i}={h}:{p}" for i, (h, p) in self.raft_addresses.items())

    def start(self, manager_id: int, extra_env: dict[str, str] | None = None) -> None:
        """Start one manager; ``extra_env`` adds variables (fault-injection tests set LD_PRELOAD)."""
        if manager_id in self.processes and self.processes[manager_id].poll() is None:
            raise RuntimeError(f"manager {manager_id} is already running")
        cmd = [sys.executable, "-m", "novacron", "manager", "--id", str(manager_id), "--peers", self.peers_arg(),
               "--data-dir", str(self.data_dir(manager_id)),
               "--client-port", str(self.client_addresses[manager_id][1]),
               "--events-origin-monotonic", repr(self.origin_monotonic_s), *self.extra_args]
        if manager_id in self.metrics_addresses:
            cmd += ["--metrics-port", str(self.metrics_addresses[manager_id][1])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(self.repo_root),
                                                                        os.environ.get("PYTHONPATH")])),
               **(extra_env or {})}
        log = (self.base_dir / f"manager-{manager_id}.log").open("ab")
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.repo_root)
        log.close()
        self.processes[manager_id] = process
        self._pid_file(manager_id).write_text(f"{process.pid}\n")

    def start_all(self) -> None:
        for manager_id in self.ids:
            self.start(manager_id)

    def kill(self, manager_id: int, sig: int = signal.SIGKILL) -> None:
        process = self.processes.get(manager_id)
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(FileNotFoundError):
            self._pid_file(manager_id).unlink()

    def wait_exit(self, manager_id: int, timeout_s: float) -> int | None:
        """The exit status of a manager that stops by itself within ``timeout_s``, else ``None``."""
        try:
            status = self.processes[manager_id].wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        with contextlib.suppress(FileNotFoundError):
            self._pid_file(manager_id).unlink()
        return status

    def running(self, manager_id: int) -> bool:
        process = self.processes.get(manager_id)
        return process is not None and process.poll() is None

    def close(self) -> None:
        for manager_id in self.ids:
            self.kill(manager_id)

    def log_text(self, manager_id: int) -> str:
        path = self.base_dir / f"manager-{manager_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close_and_print_logs(self, tail_chars: int = 2000) -> None:
        """Stop every manager, then print the tail of each one's log (a test fixture's teardown:
        pytest shows it when the test failed)."""
        self.close()
        for manager_id in self.ids:
            print(f"--- manager {manager_id} log ---\n{self.log_text(manager_id)[-tail_chars:]}")

    def _pid_file(self, manager_id: int) -> Path:
        return self.pid_dir / f"novacron-manager-{os.getpid()}-{self.raft_addresses[manager_id][1]}.pid"

    async def statuses(self, timeout_s: float = 1.0) -> list[dict[str, Any]]:
        return await cluster_status(self.client_addresses, timeout_s)

    async def wait_for_leader(self, timeout_s: float = 20.0, among: set[int] | None = None) -> dict[str, Any]:
        """The status of the manager a reachable majority agrees leads, once it has committed in its term."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = [r for r in await self.statuses() if r.get("reachable")]
            leaders = [r for r in rows if r["role"] == "leader" and (among is None or r["id"] in among)]
            if len(leaders) == 1:
                leader = leaders[0]
                followers = [r for r in rows if r["leader"] == leader["id"] and r["term"] == leader["term"]]
                if len(followers) > len(self.ids) // 2 and leader["commit"] >= 1:
                    return leader
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no leader within {timeout_s} s; statuses: {await self.statuses()}")
