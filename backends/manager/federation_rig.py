"""Nine real managers: three clusters of three, federated across emulated WAN links (issue 17 item 7).

Theory of operation
-------------------
Each cluster is a datacenter: one network namespace of a ``NetnsRig`` (namespace member ``c``
is cluster ``c``; member 0 holds the clients) running three ``novacron manager`` processes. A
cluster's managers form their own Raft group over loopback inside the namespace (LAN, the
default timing). The first manager of each cluster also runs the federation agent
(``federation_agent``): member ``c`` of the federation Raft group, listening on the cluster's
address. Federation traffic leaves the namespace through the cluster's link stage
(``linkstage``), which delays every frame by half the round trip with the simulation's
shifted-gamma jitter -- this kernel has no ``tc netem`` (LAB.md), so the WAN delay is that
userspace stage's, and partitions are nftables rules (``netns``). The agents' timing comes from
``wan_timing`` for that round trip.

``run_federation`` starts everything at once, measures formation (every cluster group and the
federation group have a leader), runs federation clients (VM placements and linearizable reads
of placements, ``jepsen.Clients`` with the "federation" workload) and, part-way, loses the
cluster whose agent leads the federation group: its three managers are SIGKILLed and its
namespace cut off for good. Failover is timed on the managers' shared event clock (``t_s`` from
one ``--events-origin-monotonic``): from the loss to the first ``LeaderElected`` of a surviving
agent in a later term. The history, with final reads from the survivors, is checked with the
core's linearizability checker; every acknowledged placement must be read back.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.manager.eventlog import EVENTS_FILE
from backends.manager.federation_agent import FEDERATION_DIR
from backends.manager.jepsen import (
    JepsenReport,
    LeaderWatch,
    Rig,
    judge_with_final_reads,
    read_history,
    wait_for,
    wan_weather,
)
from backends.manager.netns import address

MANAGERS_PER_CLUSTER = 3
CLUSTER_RAFT_PORT_BASE = 7000
"""Manager ``m`` listens for its cluster peers on 127.0.0.1:(base + m) in its cluster's namespace."""
CLUSTER_CLIENT_PORT_BASE = 7200
FEDERATION_RAFT_PORT = 7300
FEDERATION_CLIENT_PORT = 7400
FEDERATION_STAGE_PORT_BASE = 7100
"""Inside cluster ``c``'s namespace, federation member ``j`` is reached at 127.0.0.1:(base + j)."""


class FederationRig(Rig):
    """The jepsen ``Rig`` with clusters as its namespace members and three managers in each."""

    client_port = FEDERATION_CLIENT_PORT

    def __init__(self, clusters: int, work_dir: Path, rtt_ms: float, origin_monotonic_s: float,
                 planted_bug: str | None = None) -> None:
        super().__init__(clusters, work_dir, snapshot_every=300, planted_bug=planted_bug)
        self.rtt_ms = rtt_ms
        self.origin_monotonic_s = origin_monotonic_s
        self.watch = LeaderWatch({c: self.agent_dir(c) / EVENTS_FILE for c in self.ids})
        self.cluster_watches = {c: LeaderWatch({m: self.data_dir(m) / EVENTS_FILE for m in self.managers_of(c)})
                                for c in self.ids}

    @staticmethod
    def managers_of(cluster: int) -> list[int]:
        first = (cluster - 1) * MANAGERS_PER_CLUSTER + 1
        return list(range(first, first + MANAGERS_PER_CLUSTER))

    @staticmethod
    def cluster_of(manager_id: int) -> int:
        return (manager_id - 1) // MANAGERS_PER_CLUSTER + 1

    def representative(self, cluster: int) -> int:
        return self.managers_of(cluster)[0]

    def agent_dir(self, cluster: int) -> Path:
        return self.data_dir(self.representative(cluster)) / FEDERATION_DIR

    def up_network(self, weather: dict[str, float] | None = None) -> None:
        """The namespaces and one link stage per cluster carrying its agent's federation links."""
        self.net.up()
        for c in self.ids:
            self.weather_file(c).write_text(json.dumps(weather or {}))
            routes = [f"--route={j}={FEDERATION_STAGE_PORT_BASE + j}:{address(j)}:{FEDERATION_RAFT_PORT}"
                      for j in self.ids if j != c]
            self.others.append(self._spawn(c, [sys.executable, "-m", "backends.manager.linkstage", *routes,
                                               "--weather", str(self.weather_file(c)), "--seed", str(c)],
                                           f"stage-{c}.log"))

    def start(self, manager_id: int, extra_env: dict[str, str] | None = None) -> None:
        cluster = self.cluster_of(manager_id)
        peers = ",".join(f"{m}=127.0.0.1:{CLUSTER_RAFT_PORT_BASE + m}" for m in self.managers_of(cluster))
        argv = [sys.executable, "-m", "novacron", "manager", "--id", str(manager_id), "--peers", peers,
                "--data-dir", str(self.data_dir(manager_id)), "--client-port",
                str(CLUSTER_CLIENT_PORT_BASE + manager_id), "--snapshot-every", str(self.snapshot_every),
                "--events-jsonl", "--events-origin-monotonic", repr(self.origin_monotonic_s)]
        if manager_id == self.representative(cluster):
            federation_peers = ",".join(
                f"{j}={address(j)}:{FEDERATION_RAFT_PORT}" if j == cluster
                else f"{j}=127.0.0.1:{FEDERATION_STAGE_PORT_BASE + j}" for j in self.ids)
            argv += ["--federation-id", str(cluster), "--federation-peers", federation_peers,
                     "--federation-client-port", str(FEDERATION_CLIENT_PORT), "--federation-rtt-ms", f"{self.rtt_ms:g}"]
        self.managers[manager_id] = self._spawn(cluster, argv, f"manager-{manager_id}.log", extra_env)

    def lose_cluster(self, cluster: int) -> None:
        """The datacenter is gone: every manager in it SIGKILLed, its namespace cut off for good."""
        for manager_id in self.managers_of(cluster):
            self.kill(manager_id)
        self.net.partition([cluster])

    def crashed(self) -> list[str]:
        """Managers that exited without being killed (each one fails the run)."""
        return [f"manager {m} exited by itself ({p.returncode}): "
                f"{(self.work_dir / f'manager-{m}.log').read_text(errors='replace')[-1500:]}"
                for m, p in self.managers.items() if p.poll() is not None and m not in self.killed]


@dataclass
class FederationReport:
    rtt_ms: float
    clusters: int = 3
    formation_s: float = 0.0
    """From starting the nine processes to every cluster group and the federation group having a
    leader (wall clock; the processes' Python start-up at the measured load included)."""
    lost_cluster: int = 0
    lost_term: int = 0
    leader_after: int = 0
    failover_s: float = 0.0
    """From the loss to the first survivor elected federation leader in a later term (event clock)."""
    first_write_after_loss_s: float = 0.0
    """From the loss to the first acknowledged placement invoked after it (client clock)."""
    cluster_leaders: dict[int, int] = field(default_factory=dict)
    jepsen: JepsenReport = field(default_factory=lambda: JepsenReport(managers=9, seed=0, duration_s=0.0))

    def summary(self) -> str:
        return (f"{self.clusters} clusters x {MANAGERS_PER_CLUSTER} managers, federation at {self.rtt_ms:g} ms RTT "
                f"(userspace link stage, no netem): formation {self.formation_s:.2f} s; lost cluster "
                f"{self.lost_cluster} (federation leader, term {self.lost_term}); new federation leader "
                f"{self.leader_after} after {self.failover_s:.2f} s; first placement acknowledged "
                f"{self.first_write_after_loss_s:.2f} s after the loss; cluster leaders {self.cluster_leaders}; "
                f"{self.jepsen.summary()}")


def run_federation(rtt_ms: float, duration_s: float, lose_at_s: float, seed: int, work_dir: Path, *,
                   clients: int = 3, planted_bug: str | None = None, log: Any = print) -> FederationReport:
    """``planted_bug="local-reads"`` (``clientapi.PLANTED_BUG_ENV``) makes every agent answer reads
    from its own replica: the stale reads the checker must catch."""
    report = FederationReport(rtt_ms)
    report.jepsen = JepsenReport(managers=9, seed=seed, duration_s=duration_s)
    wall_started = time.monotonic()
    rig = FederationRig(3, work_dir, rtt_ms, origin_monotonic_s=wall_started, planted_bug=planted_bug)
    try:
        rig.up_network(wan_weather(rtt_ms))
        started = time.monotonic()
        for m in range(1, 3 * MANAGERS_PER_CLUSTER + 1):
            rig.start(m)
        wait_for(lambda: rig.watch.leader() != 0 and all(w.leader() for w in rig.cluster_watches.values()),
                 60.0, "the federation group or a cluster group elected no leader")
        report.formation_s = time.monotonic() - started
        history_file = work_dir / "history.jsonl"
        workload = rig.start_workload(clients, duration_s, seed, history_file, "--workload", "federation")
        time.sleep(lose_at_s)
        rig.watch.leader()  # read the events written meanwhile: the leader now, in its latest term
        report.lost_term, report.lost_cluster = rig.watch.best
        lost_at = time.monotonic()
        rig.lose_cluster(report.lost_cluster)
        log(f"federation: lost cluster {report.lost_cluster} (the federation leader) at {lose_at_s:g} s")
        rig.wait_workload(workload, duration_s)
        report.leader_after = rig.watch.leader()
        report.cluster_leaders = {c: w.leader() for c, w in rig.cluster_watches.items()}
        report.failover_s = _failover_s(rig, report.lost_cluster, report.lost_term, lost_at - wall_started)
        history = read_history(history_file)
        report.first_write_after_loss_s = min(
            (op.response_s - lost_at for op, outcome in history if outcome == "ok" and op.kind == "put"
             and op.invoke_s >= lost_at), default=float("inf"))
        report.jepsen.crashes = rig.crashed()
        report.jepsen.elections = rig.watch.elections
        report.jepsen.nemesis = [f"t={lose_at_s:g}s SIGKILL cluster {report.lost_cluster}'s three managers and "
                                 "cut its namespace off for good"]
        judge_with_final_reads(rig, rig.client_addresses(without=report.lost_cluster), history, report.jepsen)
    finally:
        rig.close_and_record(report.jepsen, wall_started)
    log(f"federation: {report.summary()}")
    return report


def _failover_s(rig: FederationRig, lost: int, lost_term: int, lost_at_s: float) -> float:
    """The first ``LeaderElected`` of a surviving agent in a term after ``lost_term``, on the event clock."""
    elected = []
    for cluster in rig.ids:
        if cluster == lost:
            continue
        for line in (rig.agent_dir(cluster) / EVENTS_FILE).read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "LeaderElected" and int(record["term"]) > lost_term:
                elected.append(float(record["t_s"]))
    if not elected:
        raise RuntimeError(f"no surviving federation agent was elected after cluster {lost} was lost")
    return min(elected) - lost_at_s
