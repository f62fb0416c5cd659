"""A supervisor for real manager processes: it restarts one whose memory grows past a limit.

Theory of operation
-------------------
Every ``poll_s`` the supervisor reads each running manager's resident set size (``VmRSS`` in
``/proc/PID/status``: the memory the process holds, which a leak grows; the virtual size would
count address space reserved and never touched). ``RssWatch`` decides: a manager whose RSS stays
above ``rss_limit_bytes`` for ``breach_polls`` consecutive polls is restarted -- one high reading
may be a transient peak (a snapshot being built), a leak stays high. A restart is SIGTERM, which
lets the manager finish the Ready in progress and close its SQLite log, SIGKILL if it has not
exited after ``stop_timeout_s``, then the same command line again (``LocalCluster.start``).

Raft makes the restart safe for committed entries: a manager persists its log before it sends or
acknowledges (``ManagerRuntime``), so the new process recovers its term, vote and log from disk
and catches up from the leader, while the other managers -- a majority of three -- go on
committing. The supervisor restarts one manager at a time (its loop awaits each restart), so it
never takes the majority down by itself. A manager whose process exited by itself (a crash) is
restarted too, with ``exited`` as the reason.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from backends.manager.localcluster import LocalCluster

KIB = 1024


def rss_bytes(pid: int) -> int | None:
    """The process's resident set size, or ``None`` if it is gone (or a zombie without one)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    return None


@dataclass
class RssWatch:
    """Counts each manager's consecutive polls above the limit; ``breached`` once it reaches ``breach_polls``."""

    rss_limit_bytes: int
    breach_polls: int = 3
    _above: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rss_limit_bytes <= 0 or self.breach_polls < 1:
            raise ValueError(f"rss_limit_bytes={self.rss_limit_bytes}, breach_polls={self.breach_polls}: "
                             "allowed: a limit above 0 and at least one poll")

    def observe(self, manager_id: int, rss: int) -> bool:
        above = self._above.get(manager_id, 0) + 1 if rss > self.rss_limit_bytes else 0
        self._above[manager_id] = above
        return above >= self.breach_polls

    def forget(self, manager_id: int) -> None:
        """A restarted manager starts counting again."""
        self._above.pop(manager_id, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Restart:
    """One restart: why, the RSS that triggered it, and monotonic times of the decision and of the
    new process's start (``stopped_s`` when the old one was gone)."""

    manager_id: int
    reason: str
    rss_bytes: int
    old_pid: int
    new_pid: int
    decided_s: float
    stopped_s: float
    started_s: float


class Supervisor:
    """Watches ``cluster``'s managers and restarts them (see the module docstring)."""

    def __init__(self, cluster: LocalCluster, *, rss_limit_bytes: int, poll_s: float = 0.2, breach_polls: int = 3,
                 stop_timeout_s: float = 5.0) -> None:
        self.cluster = cluster
        self.watch = RssWatch(rss_limit_bytes, breach_polls)
        self.poll_s = poll_s
        self.stop_timeout_s = stop_timeout_s
        self.restarts: list[Restart] = []
        self.peak_rss_bytes: dict[int, int] = {}

    async def run(self) -> None:
        """Poll forever (cancel the task to stop supervising)."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self.poll_s)

    async def poll_once(self) -> None:
        for manager_id in self.cluster.ids:
            process = self.cluster.processes.get(manager_id)
            if process is None:
                continue  # never started: not ours to start
            if process.poll() is not None:
                await self._restart(manager_id, "exited", 0)
                continue
            rss = rss_bytes(process.pid)
            if rss is None:
                continue
            self.peak_rss_bytes[manager_id] = max(rss, self.peak_rss_bytes.get(manager_id, 0))
            if self.watch.observe(manager_id, rss):
                await self._restart(manager_id, "rss_limit", rss)

    async def _restart(self, manager_id: int, reason: str, rss: int) -> None:
        decided_s = time.monotonic()
        old_pid = self.cluster.processes[manager_id].pid
        await asyncio.to_thread(self._stop, manager_id)
        stopped_s = time.monotonic()
        self.cluster.start(manager_id)
        self.watch.forget(manager_id)
        self.restarts.append(Restart(manager_id=manager_id, reason=reason, rss_bytes=rss, old_pid=old_pid,
                                     new_pid=self.cluster.processes[manager_id].pid, decided_s=decided_s,
                                     stopped_s=stopped_s, started_s=time.monotonic()))

    def _stop(self, manager_id: int) -> None:
        process = self.cluster.processes[manager_id]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.cluster.kill(manager_id)  # reaps and removes its pid file (a no-op signal-wise now)
