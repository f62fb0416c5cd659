"""The same scripted Raft scenario in both runtimes yields the same per-node events, in the same order.

Script (three managers): elect a leader L1; crash L1; a survivor L2 is elected; restart L1 and let
it follow L2 and catch up; partition L2 away from the other two; the majority elects L3 (L1 or the third
manager) and L2 steps down (CheckQuorum, dissertation 6.2); heal; everyone follows L3.

Both runtimes turn each node's ``Ready`` stream into events with the one core observer
(``novacron.raft.observer.RaftObserver``); the crash is recorded by the fault injector (the
simulation's ``RaftReporter``, here the test harness for the real processes). Per node, the
event types are compared modulo timing: a campaign that lost (a ``TermStarted`` of a term the
node did not then lead) depends on timeouts, not on the scenario, and is dropped; which of L1 and
the third manager wins after the partition is a race too, so the simulation is run with the first
seed whose race went the same way as the real run's, and node ids are matched by their role.

The real run is three ``novacron manager`` processes on loopback (``LocalCluster``) at 127.0.0.1-3;
every manager's event log counts ``t_s`` from one origin, so the logs merge in time order and
the failover is folded from them as in the simulation. The partition is an nftables table
dropping TCP between the isolated manager's address and the others' Raft ports (LAB.md: no netem
here; nftables is the partition tool). It needs root and ``nft``: without them the test skips, or
fails with ``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from random import Random
from typing import Any

import pytest

from backends.manager.eventlog import read_events
from backends.manager.localcluster import LocalCluster
from novacron.events import REGISTRY, InMemoryEventLog, Recorder
from novacron.raft.messages import NO_NODE
from novacron.raft.node import LEADER
from novacron.raft.observer import fold_cluster
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, RaftCluster
from sim.raft.reporter import RaftReporter
from tests.unavailable import unavailable

NODE_EVENTS = {"ManagerStarted", "ManagerCrashed", "TermStarted", "LeaderElected", "LeaderSteppedDown",
               "LeaderCommitted"}
Sequences = dict[int, list[dict[str, Any]]]
"""manager id -> its per-node events in order, each a dict with at least ``type`` (and ``term``)."""


def normalized(events: list[dict[str, Any]]) -> tuple[str, ...]:
    """Event types in order, minus lost campaigns (a ``TermStarted`` not followed by winning that term)."""
    won = {e["term"] for e in events if e["type"] == "LeaderElected"}
    return tuple(e["type"] for e in events
                 if e["type"] in NODE_EVENTS and not (e["type"] == "TermStarted" and e["term"] not in won))


def leaders_in_order(sequences: Sequences) -> list[int]:
    elected = sorted((e["term"], node) for node, events in sequences.items() for e in events
                     if e["type"] == "LeaderElected")
    return [node for _, node in elected]


def by_role(sequences: Sequences) -> dict[str, tuple[str, ...]]:
    """Per-node sequences keyed by the node's role in the script: L1, L2, and L3 or 'other'."""
    first, second, third = leaders_in_order(sequences)[:3]
    roles = {first: "L1", second: "L2"}
    roles.setdefault(third, "L3")
    for node in sequences:
        roles.setdefault(node, "other")
    return {roles[node]: normalized(events) for node, events in sequences.items()}


# -- the simulation ------------------------------------------------------------------------------


def simulate(seed: int) -> Sequences:
    log = InMemoryEventLog()
    clock: list[RaftCluster] = []
    reporter = RaftReporter(Recorder(log, lambda: clock[0].now_s if clock else 0.0))
    cluster = RaftCluster(ClusterSettings(managers=3), NetworkModel(PROFILES["lan"], Random(seed)), Random(seed),
                          hooks=[reporter])
    clock.append(cluster)

    def run_until(done: Callable[[], bool], what: str) -> None:
        if not cluster.run_until(cluster.now_s + 20.0, done):
            raise AssertionError(f"seed {seed}: {what} did not happen within 20 simulated seconds")

    def stable_leader(among: set[int]) -> int | None:
        leader = cluster.leader()
        if leader is None or leader.id not in among or leader.log.term(leader.log.committed) != leader.term:
            return None
        followers = [m for m in among if (n := cluster.node(m)) is not None and n.leader == leader.id]
        return leader.id if len(followers) >= 2 else None

    everyone = set(cluster.managers)
    run_until(lambda: stable_leader(everyone) is not None, "the first election")
    first = stable_leader(everyone)
    assert first is not None
    cluster.crash(first)
    survivors = everyone - {first}
    run_until(lambda: stable_leader(survivors) is not None, "the election after the crash")
    second = stable_leader(survivors)
    assert second is not None
    cluster.restart(first)
    run_until(lambda: (n := cluster.node(first)) is not None and n.leader == second
              and n.log.committed >= cluster.managers[second].storage.stored().hard_state.commit,
              "the restarted node following, caught up")
    majority = everyone - {second}
    groups = [[second], sorted(majority)]
    cluster.network.partition(groups)
    reporter.partitioned(cluster, groups, True)
    run_until(lambda: stable_leader(majority) is not None and (n := cluster.node(second)) is not None
              and n.role != LEADER, "the election in the majority and the isolated leader's step-down")
    third = stable_leader(majority)
    cluster.network.heal()
    reporter.healed(cluster, groups)
    run_until(lambda: all((n := cluster.node(m)) is not None and n.leader == third for m in everyone),
              "everyone following the new leader after the heal")
    sequences: Sequences = {m: [] for m in everyone}
    for ev in log:
        manager_id = getattr(ev, "manager_id", NO_NODE)
        if manager_id in sequences:
            sequences[manager_id].append({"type": ev.type_name, "term": getattr(ev, "term", None)})
    return sequences


def test_simulated_script_has_the_expected_shape() -> None:
    roles = by_role(simulate(seed=1))
    assert roles["L2"] == ("ManagerStarted", "TermStarted", "LeaderElected", "LeaderCommitted", "LeaderSteppedDown")
    assert roles["L1"][:6] == ("ManagerStarted", "TermStarted", "LeaderElected", "LeaderCommitted",
                               "ManagerCrashed", "ManagerStarted")


# -- the real managers ---------------------------------------------------------------------------


class Nftables:
    """A private nftables table dropping TCP between one manager's address and the others' Raft ports."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.table = f"novacron_test_{os.getpid()}"

    def _nft(self, script: str) -> None:
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True)

    def isolate(self, node: int) -> None:
        host, port = self.cluster.raft_addresses[node]
        others = [self.cluster.raft_addresses[i] for i in self.cluster.ids if i != node]
        other_hosts = ", ".join(h for h, _ in others)
        other_ports = ", ".join(str(p) for _, p in others)
        self._nft(f"""table ip {self.table} {{
  chain output {{
    type filter hook output priority 0; policy accept;
    ip saddr {host} tcp dport {{ {other_ports} }} drop
    ip saddr {{ {other_hosts} }} ip daddr {host} tcp dport {port} drop
  }}
}}""")

    def heal(self) -> None:
        subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True)


def require_nft() -> None:
    if os.geteuid() == 0 and shutil.which("nft"):
        return
    unavailable("partitioning managers on loopback needs root and nft (apt-get install nftables)")


@pytest.fixture
def real_cluster(tmp_path: Path) -> Iterator[tuple[LocalCluster, Nftables]]:
    require_nft()
    cluster = LocalCluster(tmp_path / "cluster", distinct_addresses=True, extra_args=("--events-jsonl",))
    firewall = Nftables(cluster)
    try:
        yield cluster, firewall
    finally:
        firewall.heal()
        cluster.close_and_print_logs()


async def wait_for(cluster: LocalCluster, done: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        rows = [r for r in await cluster.statuses() if r.get("reachable")]
        if done(rows):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within 30 s: {await cluster.statuses()}")


def record_crash(cluster: LocalCluster, node: int) -> None:
    """The harness is the fault injector: it records the crash in the dead manager's own event log."""
    path = cluster.data_dir(node) / "events.jsonl"
    lines = path.read_bytes().splitlines()
    t_s = round(time.monotonic() - cluster.origin_monotonic_s, 6)  # the managers' logs count from this origin
    record = {"type": "ManagerCrashed", "t_s": t_s, "seq": len(lines), "source": f"manager-{node}",
              "manager_id": node, "was_leader": True}
    with path.open("a") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")


def stable(rows: list[dict[str, Any]], among: set[int]) -> int | None:
    leaders = [r for r in rows if r["role"] == "leader" and r["id"] in among]
    if len(leaders) != 1 or leaders[0]["commit"] < 1:
        return None
    leader = leaders[0]
    followers = [r for r in rows if r["id"] in among and r["leader"] == leader["id"] and r["term"] == leader["term"]]
    return int(leader["id"]) if len(followers) >= 2 else None


async def real_script(cluster: LocalCluster, firewall: Nftables) -> None:
    everyone = set(cluster.ids)
    cluster.start_all()
    first = (await cluster.wait_for_leader())["id"]
    await wait_for(cluster, lambda rows: stable(rows, everyone) == first and any(
        e["type"] == "LeaderCommitted" for e in read_events(cluster.data_dir(first))), "the first leader's commit")
    cluster.kill(first, signal.SIGKILL)
    record_crash(cluster, first)
    survivors = everyone - {first}
    await wait_for(cluster, lambda rows: stable(rows, survivors) is not None, "the election after the crash")
    second = stable([r for r in await cluster.statuses() if r.get("reachable")], survivors)
    cluster.start(first)
    await wait_for(cluster, lambda rows: any(r["id"] == first and r["leader"] == second for r in rows) and len(
        {r["commit"] for r in rows}) == 1, "the restarted manager following the new leader, caught up")
    majority = everyone - {second}
    firewall.isolate(second)  # type: ignore[arg-type]
    await wait_for(cluster, lambda rows: stable(rows, majority) is not None
                   and any(r["id"] == second and r["role"] != "leader" for r in rows),
                   "the majority's election and the isolated leader's step-down")
    third = stable([r for r in await cluster.statuses() if r.get("reachable")], majority)
    firewall.heal()
    await wait_for(cluster, lambda rows: len(rows) == 3 and all(r["leader"] == third for r in rows),
                   "everyone following the new leader after the heal")


@pytest.mark.slow
def test_real_managers_emit_the_simulations_events_in_the_same_order(
        real_cluster: tuple[LocalCluster, Nftables]) -> None:
    cluster, firewall = real_cluster
    asyncio.run(real_script(cluster, firewall))
    real: Sequences = {i: [e for e in read_events(cluster.data_dir(i)) if e["type"] in NODE_EVENTS]
                       for i in cluster.ids}
    real_roles = by_role(real)
    for seed in range(40):
        simulated_roles = by_role(simulate(seed))
        if simulated_roles.keys() == real_roles.keys():
            break
    else:
        raise AssertionError(f"no simulated seed in 0..39 had the real run's winners: {real_roles}")
    print(f"simulation seed {seed}; per-node events by role: {real_roles}")
    assert real_roles == simulated_roles

    # Cluster-wide facts are the same fold over the managers' merged logs (one origin for t_s).
    merged = [REGISTRY.cls(e["type"])(**{k: v for k, v in e.items() if k != "type"})
              for events in real.values() for e in events]
    fold, derived = fold_cluster(merged)
    assert [d.cls.__name__ for d in derived] == ["FailoverCompleted"]
    failover = derived[0].fields
    print(f"real failover: elected after {failover['elect_ms']:.0f} ms, committed after "
          f"{failover['failover_ms']:.0f} ms; leaderless gaps {[round(ms) for ms in fold.leaderless_ms]} ms")
    assert 0 < failover["elect_ms"] <= failover["failover_ms"] < 10_000
    assert len(fold.leaderless_ms) == 3
