"""Real managers as a federation group across three emulated regions (issue 17 item 7, reduced).

Theory of operation
-------------------
Three ``novacron manager`` processes, one per region, each in its own network namespace of the
Jepsen rig (``backends.manager.jepsen.Rig``), stand for the federation group's three cluster
representatives. Every Raft frame between them goes through the userspace link stages with
"weather" of half the region round trip each way (gamma-shaped jitter of 5 % of the RTT, the
simulation's latency law) -- this kernel has no ``tc netem`` (LAB.md), so the WAN delay is the
link stage's, not the kernel's. The run measures formation (first manager process started to
the first ``LeaderElected`` in the managers' event logs; Python start-up included), then runs
the Jepsen clients against the group and, part-way, loses the leader's region: its manager is
SIGKILLed and its namespace cut off (nftables) for the rest of the run. The history, with final
reads from the two survivors appended, is checked for linearizability, and every acknowledged
write-once put must be read back.

This run keeps the managers' LAN default timing (heartbeat 50 ms, election timeout 150-300 ms)
at WAN delays, on purpose: it measures what that timing does there. The nine-process test of the
issue -- three clusters of three managers, each cluster's own group, federation agents with the
WAN timing -- is ``federation_rig``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.manager.jepsen import (
    JepsenReport,
    Rig,
    judge_with_final_reads,
    read_history,
    wait_for,
    wan_weather,
)


@dataclass
class WanGroupReport:
    rtt_ms: float
    formation_s: float = 0.0
    """From spawning the first manager process to the first ``LeaderElected`` (wall clock, the
    processes' Python start-up at the measured load included)."""
    elected_after_start_s: float = 0.0
    """The first leader's election on its own clock: from its ``ManagerStarted`` event."""
    lost_manager: int = 0
    leader_after: int = 0
    jepsen: JepsenReport = field(default_factory=lambda: JepsenReport(managers=3, seed=0, duration_s=0.0))

    def summary(self) -> str:
        return (f"3 regions at {self.rtt_ms:g} ms RTT (link stage): formation {self.formation_s:.2f} s "
                f"(the first leader elected {self.elected_after_start_s:.2f} s after its own start); "
                f"lost manager {self.lost_manager}'s region, leader afterwards {self.leader_after}; "
                f"{self.jepsen.summary()}")


def run_wan_group(rtt_ms: float, duration_s: float, lose_at_s: float, seed: int, work_dir: Path, *,
                  clients: int = 3, log: Any = print) -> WanGroupReport:
    report = WanGroupReport(rtt_ms)
    report.jepsen = JepsenReport(managers=3, seed=seed, duration_s=duration_s)
    wall_started = time.monotonic()
    rig = Rig(3, work_dir, snapshot_every=300)
    try:
        rig.up_network(wan_weather(rtt_ms))
        started = time.monotonic()
        for i in rig.ids:
            rig.start(i)
        wait_for(lambda: rig.watch.leader() != 0, 60.0, "no manager was elected leader")
        report.formation_s = time.monotonic() - started
        report.elected_after_start_s = _elected_after_start_s(rig.data_dir(rig.watch.leader()) / "events.jsonl")
        history_file = work_dir / "history.jsonl"
        workload = rig.start_workload(clients, duration_s, seed, history_file)
        time.sleep(lose_at_s)
        report.lost_manager = lost = rig.watch.leader()
        rig.kill(lost)
        rig.net.partition([lost])
        log(f"wan group: lost manager {lost}'s region at {lose_at_s:g} s")
        rig.wait_workload(workload, duration_s)
        report.leader_after = rig.watch.leader()
        report.jepsen.crashes = list(rig.crashes)
        report.jepsen.elections = rig.watch.elections
        report.jepsen.nemesis = [f"t={lose_at_s:g}s SIGKILL manager {lost} and cut its namespace off for good"]
        judge_with_final_reads(rig, rig.client_addresses(without=lost), read_history(history_file), report.jepsen)
    finally:
        rig.close_and_record(report.jepsen, wall_started)
    log(f"wan group: {report.summary()}")
    return report


def _elected_after_start_s(events: Path) -> float:
    started_s = elected_s = None
    for line in events.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "ManagerStarted" and started_s is None:
            started_s = float(record["t_s"])
        if record["type"] == "LeaderElected":
            elected_s = float(record["t_s"])
            break
    if started_s is None or elected_s is None:
        raise RuntimeError(f"{events}: no ManagerStarted or LeaderElected event")
    return elected_s - started_s
