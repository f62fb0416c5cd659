"""The real runtime's control plane: ``novacron manager`` processes and their Raft log.

Theory of operation
-------------------
``ManagerHarness`` starts ``[raft] managers`` real manager processes on loopback
(``LocalCluster``; every manager counts its events' ``t_s`` from the run's own monotonic origin,
so their logs merge with the run's in time order), waits for the cluster to form and records
``ClusterFormed`` (every manager follows one leader that has committed an entry of its term).
A control decision is *taken when its command is applied*, as in the simulation's Raft-backed
control plane: ``commit`` proposes ``put decision/N`` through a leader-following client and
returns once the leader has applied it; a leader kill or an election shows up as decision
latency. The client runs on its own asyncio loop in a thread, so the run's loop stays
synchronous.

Faults are injected for real: ``crash_leader`` SIGKILLs whoever leads and records
``ManagerCrashed`` (a crash is the fault injector's fact, not something the dead node can
report); ``restart`` starts the process again on the same data directory; ``isolate_leader``
cuts whoever leads off from the others with nftables (``firewall``) and ``heal`` reconnects it,
recording ``NetworkPartitioned``/``NetworkHealed``, then ``PartitionRecovered`` once every
manager follows one leader that has caught up with the commit index at the heal (the
simulation's definition; ``recovered`` is polled by the run's loop). At the end, the managers
are stopped with SIGTERM (each folds its Parquet row groups into its data directory's
``events.parquet``), ``events`` reads every manager's own event log, and the cluster-wide
facts (leaderless gaps, ``FailoverCompleted``) are the core's fold over the merged logs
(``novacron.raft.observer``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from backends.manager.client import ClusterClient
from backends.manager.eventlog import folded_events
from backends.manager.localcluster import LocalCluster
from backends.realrun.firewall import LoopbackPartition
from novacron.events import Event, Recorder
from novacron.raft.events import (
    ClusterFormed,
    FailoverCompleted,
    ManagerCrashed,
    NetworkHealed,
    NetworkPartitioned,
    PartitionRecovered,
)
from novacron.raft.observer import fold_cluster
from novacron.statemachine import encode_command

T = TypeVar("T")
FORMATION_POLL_S = 0.02
COMMIT_DEADLINE_S = 30.0


class ManagerError(RuntimeError):
    """The managers could not form a cluster or commit a decision in time."""


class ManagerHarness:
    def __init__(self, base_dir: Path, size: int, origin_monotonic_s: float, recorder: Recorder, *,
                 formation_timeout_s: float, partitions: bool = False) -> None:
        self.cluster = LocalCluster(base_dir, size, distinct_addresses=partitions)
        self.partition = LoopbackPartition()
        self._heal: tuple[float, int, int] | None = None
        """(heal time, commit index to reach, leader before the partition) while recovering."""
        self._leader_before = 0
        self.cluster.origin_monotonic_s = origin_monotonic_s
        self.recorder = recorder
        self.formation_timeout_s = formation_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="manager-client", daemon=True)
        self._thread.start()
        self._client = ClusterClient(self.cluster.client_addresses)
        self._decisions = 0
        self.crashed: set[int] = set()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def start(self) -> None:
        """Start every manager; return once the cluster has formed (``ClusterFormed`` recorded)."""
        started_s = time.monotonic() - self.cluster.origin_monotonic_s
        self.cluster.start_all()
        deadline = time.monotonic() + self.formation_timeout_s
        while time.monotonic() < deadline:
            rows = self._call(self.cluster.statuses(0.5), 5.0)
            if self._formed(rows):
                now_s = time.monotonic() - self.cluster.origin_monotonic_s
                self.recorder.emit(ClusterFormed, source="raft", formation_s=now_s - started_s,
                                   managers=len(self.cluster.ids))
                return
            time.sleep(FORMATION_POLL_S)
        raise ManagerError(f"the {len(self.cluster.ids)} managers formed no cluster within "
                           f"{self.formation_timeout_s:g} s; logs in {self.cluster.base_dir}")

    @staticmethod
    def _formed(rows: list[dict[str, Any]]) -> bool:
        if not rows or not all(r.get("reachable") for r in rows):
            return False
        leaders = [r for r in rows if r["role"] == "leader"]
        if len(leaders) != 1 or leaders[0]["commit"] < 1:
            return False
        leader = leaders[0]
        return all(r["leader"] == leader["id"] and r["term"] == leader["term"] and r["commit"] >= leader["commit"]
                   for r in rows)

    def commit(self, kind: str, **fields: Any) -> None:
        """Propose one decision and return once it is committed and applied by the leader."""
        self._decisions += 1
        data = encode_command(op="put", key=f"decision/{self._decisions}", value=f"{kind} {sorted(fields.items())}")
        reply = self._call(self._client.propose(data, deadline_s=COMMIT_DEADLINE_S), COMMIT_DEADLINE_S + 5)
        if not reply.get("ok"):
            raise ManagerError(f"decision {self._decisions} ({kind}) was not committed: {reply.get('error')}")

    def leader(self) -> int | None:
        rows = [r for r in self._call(self.cluster.statuses(0.5), 5.0) if r.get("reachable")]
        leaders = sorted((r["term"], r["id"]) for r in rows if r["role"] == "leader")
        return leaders[-1][1] if leaders else None

    def crash_leader(self) -> int | None:
        """SIGKILL the manager that leads now; record ``ManagerCrashed``. None if none leads."""
        leader = self.leader()
        if leader is None:
            return None
        self.cluster.kill(leader, signal.SIGKILL)
        self.crashed.add(leader)
        self.recorder.emit(ManagerCrashed, source=f"manager-{leader}", manager_id=leader, was_leader=True)
        return leader

    def restart(self, manager_id: int) -> None:
        self.cluster.start(manager_id)
        self.crashed.discard(manager_id)

    def isolate_leader(self) -> None:
        isolated = self.leader() or min(self.cluster.ids)
        self._leader_before = isolated
        others = [i for i in self.cluster.ids if i != isolated]
        self.partition.isolate(self.cluster.raft_addresses[isolated], [self.cluster.raft_addresses[i] for i in others])
        self.recorder.emit(NetworkPartitioned, source="network", partition_groups=str([[isolated], others]),
                           symmetric=True)

    def heal(self) -> None:
        self.partition.heal()
        rows = [r for r in self._call(self.cluster.statuses(0.5), 5.0) if r.get("reachable")]
        healed = self.recorder.emit(NetworkHealed, source="network", partition_groups="healed")
        self._heal = (healed.t_s, max((r["commit"] for r in rows), default=0), self._leader_before)

    def recovered(self) -> bool:
        """After a heal: True (and ``PartitionRecovered`` recorded) once the cluster has recovered."""
        if self._heal is None:
            return True
        healed_s, commit, leader_before = self._heal
        rows = self._call(self.cluster.statuses(0.5), 5.0)
        if not self._formed(rows) or min(r["commit"] for r in rows) < commit:
            return False
        leader = next(r["id"] for r in rows if r["role"] == "leader")
        now_s = time.monotonic() - self.cluster.origin_monotonic_s
        self.recorder.emit(PartitionRecovered, source="raft", recovery_s=now_s - healed_s,
                           leader_changed=leader != leader_before)
        self._heal = None
        return True

    def close(self) -> None:
        self.partition.close()
        try:
            self._call(self._client.close(), 5.0)
        finally:
            for manager_id in self.cluster.ids:  # SIGTERM: each folds its Parquet parts and stops
                self.cluster.kill(manager_id, signal.SIGTERM)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)

    def events(self, run_events: list[Event]) -> list[Event]:
        """Every manager's own events, plus the cluster-wide fold over them and the run's crashes.
        Call after ``close`` (the logs are complete then)."""
        own = [ev for manager_id in self.cluster.ids for ev in folded_events(self.cluster.data_dir(manager_id))]
        crashes = [e for e in run_events if isinstance(e, ManagerCrashed)]
        _, derived = fold_cluster([*own, *crashes])
        # The fold completes failovers in crash order: each at its crash plus its failover time.
        failovers = [obs for obs in derived if obs.cls is FailoverCompleted]
        folded = [FailoverCompleted(t_s=crash.t_s + float(obs.fields["failover_ms"]) / 1000.0, seq=0,
                                    source="raft", **obs.fields)
                  for obs, crash in zip(failovers, [c for c in crashes if c.was_leader], strict=False)]
        return own + folded


def restamped(events: list[Event]) -> list[Event]:
    """One log from several sources: sorted by time (stable), sequence numbers made dense again."""
    ordered = sorted(enumerate(events), key=lambda pair: (pair[1].t_s, pair[0]))
    return [dataclasses.replace(ev, seq=seq) for seq, (_, ev) in enumerate(ordered)]
