"""Three real manager processes on loopback: election, 1000 commits, SIGKILL of the leader, full restart.

Each manager is ``python -m novacron manager`` in its own process (``LocalCluster``), with its
log (the default segment log) in a temporary directory. The scenario follows the Raft paper's guarantees:

- Election Safety / liveness (section 5.2): a leader emerges, and after SIGKILL of the leader
  (while proposals are in flight) a new leader is elected among the survivors and commits
  (section 5.4.2: an entry of its term).
- Leader Completeness and State Machine Safety (sections 5.4.1, 5.4.3): every proposal
  acknowledged as committed, before or after the failover, is applied by every manager at the
  same ``(log_index, batch_position)`` after ALL managers were SIGKILLed and restarted from disk;
  the managers' applied sequences (their ``events.jsonl``) are identical.
- ReadIndex (dissertation section 6.4): a linearizable read after the failover sees the last
  acknowledged write of its key.
- Node health (``backends.manager.health``): the leader's score of each peer comes from the
  heartbeats it timed -- live peers answer in well under 150 ms, the killed leader answers none.

Every process is killed by the fixture's finalizer, also when an assertion fails; pid files go to
``$NOVACRON_TEST_STATE`` when it is set.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.manager.client import ClusterClient, ManagerUnavailable
from backends.manager.eventlog import read_events
from backends.manager.localcluster import REPO_ROOT, LocalCluster
from novacron.raft.linearizability import GET, PUT, Operation, check_history
from novacron.statemachine import encode_command

pytestmark = pytest.mark.slow
WINDOW = 50


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    made = LocalCluster(tmp_path / "cluster", extra_args=("--events-jsonl",))
    try:
        yield made
    finally:
        made.close_and_print_logs(3000)


Acked = dict[str, tuple[int, int]]
"""Acknowledged proposals: key -> (log_index, batch_position)."""


async def propose_all(client: ClusterClient, keys: list[str], acked: Acked) -> None:
    """Propose ``put key=value=key`` for every key with ``WINDOW`` in flight; record the acknowledged."""
    queue = iter(keys)

    async def worker() -> None:
        for key in queue:
            reply = await client.propose(encode_command(op="put", key=key, value=key), deadline_s=20)
            if reply["ok"]:
                acked[key] = (reply["index"], reply["position"])

    await asyncio.gather(*(worker() for _ in range(WINDOW)))


async def wait_applied(cluster: LocalCluster, index: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await cluster.statuses()
        if all(r.get("reachable") and r["applied"] >= index for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"managers did not apply index {index} within {timeout_s} s: {rows}")
        await asyncio.sleep(0.05)


def applied_sequence(data_dir: Path) -> list[tuple[int, int, str]]:
    return [(e["log_index"], e["batch_position"], e["command_key"])
            for e in read_events(data_dir) if e["type"] == "ManagerCommandApplied"]


def cluster_status_table(cluster: LocalCluster) -> str:
    peers = ",".join(f"{i}={h}:{p}" for i, (h, p) in cluster.client_addresses.items())
    done = subprocess.run([sys.executable, "-m", "novacron", "cluster", "status", "--peers", peers],
                          capture_output=True, text=True, timeout=30, cwd=REPO_ROOT,
                          env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    return done.stdout + done.stderr


async def leader_status(cluster: LocalCluster, leader_id: int) -> dict[str, Any]:
    rows = {r["id"]: r for r in await cluster.statuses() if r.get("reachable")}
    return rows[leader_id]


def check_health_from_heartbeats(status: dict[str, Any], leader_id: int, dead: int | None) -> None:
    """The leader scores its peers from the heartbeats it timed (``backends.manager.health``): a
    live peer answered them in well under the 150 ms deadline; a dead one answered none lately."""
    health = status["health"]
    for peer, row in health.items():
        if int(peer) == leader_id:
            continue
        assert row["heartbeats"] >= 10, (peer, row)
        if int(peer) == dead:
            assert row["lost"] >= 10 and row["connectivity"] < 5.0, (peer, row)
        else:  # loose bounds: a loaded CI machine answers late, and a late answer counts as lost
            assert 0.0 < row["last_rtt_ms"] < 150.0 and row["connectivity"] > 10.0, (peer, row)
            assert row["lost"] <= row["heartbeats"] // 2, (peer, row)


def test_three_managers_commit_survive_sigkill_and_restart(cluster: LocalCluster) -> None:
    asyncio.run(_scenario(cluster))


async def _scenario(cluster: LocalCluster) -> None:
    cluster.start_all()
    first = await cluster.wait_for_leader()
    client = ClusterClient(cluster.client_addresses)
    acked: Acked = {}
    counter = itertools.count()
    try:
        before = [f"before-{next(counter)}" for _ in range(1000)]
        await propose_all(client, before, acked)
        assert len(acked) == 1000, "every proposal to a healthy cluster must be acknowledged"
        table = cluster_status_table(cluster)
        assert "leader" in table and f"{first['id']}" in table, table
        check_health_from_heartbeats(await leader_status(cluster, first["id"]), first["id"], dead=None)

        # SIGKILL the leader while proposals are in flight: those acknowledged must survive.
        during = [f"during-{next(counter)}" for _ in range(500)]
        stream = asyncio.create_task(propose_all(client, during, acked))
        while len(acked) < 1100 and not stream.done():
            await asyncio.sleep(0.005)
        print(f"killing leader {first['id']} with {len(acked) - 1000} of {len(during)} in-flight-phase proposals acked")
        cluster.kill(first["id"], signal.SIGKILL)
        survivors = set(cluster.ids) - {first["id"]}
        second = await cluster.wait_for_leader(among=survivors)
        await stream
        assert second["id"] != first["id"] and second["term"] > first["term"]
        assert "unreachable" in cluster_status_table(cluster)
        await asyncio.sleep(1.0)  # about 20 heartbeats to the dead manager, all lost
        check_health_from_heartbeats(await leader_status(cluster, second["id"]), second["id"], dead=first["id"])
        after = [f"after-{next(counter)}" for _ in range(200)]
        await propose_all(client, after, acked)
        assert all(key in acked for key in after), "the new leader must commit"
        read = await client.read(after[-1])
        assert read["ok"] and read["value"] == after[-1], read
    finally:
        await client.close()

    cluster.start(first["id"])
    await wait_applied(cluster, max(index for index, _ in acked.values()))
    for manager_id in cluster.ids:
        cluster.kill(manager_id, signal.SIGKILL)
    cluster.start_all()
    await cluster.wait_for_leader()
    await wait_applied(cluster, max(index for index, _ in acked.values()))

    sequences = {i: applied_sequence(cluster.data_dir(i)) for i in cluster.ids}
    shortest = min(len(s) for s in sequences.values())
    for manager_id, sequence in sequences.items():
        assert sequence[:shortest] == sequences[cluster.ids[0]][:shortest], f"manager {manager_id} diverged"
        assert len(set(sequence)) == len(sequence), f"manager {manager_id} applied a command twice"
        position_of = {(index, position): key for index, position, key in sequence}
        missing = [key for key, where in acked.items() if position_of.get(where) != key]
        assert not missing, f"manager {manager_id} lost {len(missing)} acknowledged commands, e.g. {missing[:3]}"

    client = ClusterClient(cluster.client_addresses)
    try:
        for key in (before[0], before[-1], after[0]):
            read = await client.read(key)
            assert read["ok"] and read["value"] == key, read
    finally:
        await client.close()


# -- linearizability of puts and ReadIndex reads across a leader crash --------------------------


async def single_attempt(client: ClusterClient, op: str, **fields: Any) -> dict[str, Any] | None:
    """``op`` on the leader, retried only when the answer proves it did not happen (``not_leader``
    or no connection); ``None`` when the outcome is unknown (the connection broke mid-request)."""
    ids = sorted(client.addresses)
    for _ in range(200):
        target = client.leader
        try:
            manager = await client.client(target)
        except ManagerUnavailable:
            client.leader = ids[(ids.index(target) + 1) % len(ids)]
            await asyncio.sleep(0.02)
            continue
        try:
            reply = await manager.request(op, 2.0, **fields)
        except (ManagerUnavailable, TimeoutError):
            client.leader = ids[(ids.index(target) + 1) % len(ids)]
            return None
        if reply["ok"] or reply.get("error") != "not_leader":
            return reply
        hinted = int(reply.get("leader") or 0)
        client.leader = hinted if hinted in client.addresses and hinted != target else ids[
            (ids.index(target) + 1) % len(ids)]
        await asyncio.sleep(0.02)
    return None


async def run_client(number: int, client: ClusterClient, until: float, history: list[Operation]) -> None:
    rng = random.Random(number)
    writes = itertools.count()
    while time.monotonic() < until:
        key = f"r{rng.randrange(3)}"
        invoke_s = time.monotonic()
        if rng.random() < 0.5:
            value = f"c{number}-{next(writes)}"
            reply = await single_attempt(client, "propose", data=encode_command(op="put", key=key, value=value))
            if reply is None or reply.get("error") == "unknown":
                history.append(Operation(number, key, PUT, value, invoke_s))  # may or may not have happened
            elif reply["ok"]:
                history.append(Operation(number, key, PUT, value, invoke_s, time.monotonic()))
            # "dropped": its entry was overwritten, so it never took effect
        else:
            reply = await single_attempt(client, "read", key=key)
            if reply is not None and reply["ok"]:
                history.append(Operation(number, key, GET, reply["value"], invoke_s, time.monotonic()))


def test_puts_and_reads_stay_linearizable_across_a_leader_sigkill(cluster: LocalCluster) -> None:
    """Herlihy & Wing linearizability of the client API (Wing-Gong search, novacron.raft.linearizability)."""

    async def scenario() -> list[Operation]:
        cluster.start_all()
        first = await cluster.wait_for_leader()
        history: list[Operation] = []
        clients = [ClusterClient(cluster.client_addresses) for _ in range(6)]
        until = time.monotonic() + 3.0
        try:
            load = asyncio.gather(*(run_client(i, c, until, history) for i, c in enumerate(clients)))
            await asyncio.sleep(1.0)
            cluster.kill(first["id"], signal.SIGKILL)
            await load
        finally:
            for client in clients:
                await client.close()
        return history

    history = asyncio.run(scenario())
    completed = [op for op in history if op.completed]
    assert sum(op.kind == GET for op in completed) > 20 and sum(op.kind == PUT for op in completed) > 20
    result = check_history(history)
    assert result.ok, "not linearizable:\n" + "\n".join(op.describe() for op in result.history[:40])
