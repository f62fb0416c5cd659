"""Manager runtimes in this process (one asyncio loop, real TCP on loopback, real SQLite).

Faster than separate processes, so the client API, redirects, restarts and snapshots are checked
here; the process-level crash tests are in ``test_manager_cluster.py``. A spy on every runtime's
store and peer links checks the rule of Figure 2 that the runtime exists to keep: nothing is sent
before the state it reveals is durable -- a granted vote only after the vote is stored, an
acknowledgement of index i only after the entries up to i are stored, no message with a term
that is not yet stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from backends.manager.client import ClusterClient, ManagerClient
from backends.manager.eventlog import read_events
from backends.manager.framing import FrameDecoder
from backends.manager.runtime import ManagerConfig, ManagerRuntime, durable_committed_count
from backends.ports import free_ports
from novacron.raft import Entry, MessageType, Ready, from_wire
from novacron.statemachine import encode_command

T = MessageType


class DurabilitySpy:
    """Tracks what each runtime has made durable and checks every message it sends against it."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checked = 0
        self.types_seen: set[int] = set()

    def attach(self, runtime: ManagerRuntime) -> None:
        durable = {"term": runtime.node.term, "vote": runtime.node.vote, "last": runtime.node.log.last_index()}
        save = runtime.store.save

        def spying_save(ready: Ready) -> None:
            save(ready)
            if ready.snapshot is not None:
                durable["last"] = max(durable["last"], ready.snapshot.index)
            if ready.entries:
                durable["last"] = ready.entries[-1].index
            if ready.hard_state is not None:
                durable["term"], durable["vote"] = ready.hard_state.term, ready.hard_state.vote

        runtime.store.save = spying_save  # type: ignore[method-assign]
        for link in runtime.links.values():
            send = link.send

            def spying_send(frame: bytes, send: Callable[[bytes], bool] = send) -> bool:
                for wires in FrameDecoder().feed(frame):
                    for wire in wires:
                        self._check(runtime.id, from_wire(wire), durable)
                return send(frame)

            link.send = spying_send  # type: ignore[method-assign]

    def _check(self, node: int, m: Any, durable: dict[str, int]) -> None:
        self.checked += 1
        self.types_seen.add(m.type)
        if m.type in (T.PRE_VOTE, T.PRE_VOTE_RESP):
            return  # PreVote asks about term+1 without adopting it (dissertation 9.6)
        if m.term > durable["term"]:
            self.violations.append(f"{node} sent {m.describe()} before term {m.term} was stored")
        if m.type == T.VOTE_RESP and not m.reject and durable["vote"] != m.dst:
            self.violations.append(f"{node} granted a vote to {m.dst} before storing it")
        if m.type == T.APPEND_RESP and not m.reject and m.index > durable["last"]:
            self.violations.append(f"{node} acknowledged {m.index} with only {durable['last']} stored")


class InProcessCluster:
    def __init__(self, base_dir: Path, size: int, **config: Any) -> None:
        ports = free_ports(2 * size)
        self.ids = list(range(1, size + 1))
        self.peers = {i: ("127.0.0.1", ports[k]) for k, i in enumerate(self.ids)}
        self.client_addresses = {i: ("127.0.0.1", ports[size + k]) for k, i in enumerate(self.ids)}
        self.base_dir, self.config = base_dir, config
        self.runtimes: dict[int, ManagerRuntime] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.spy = DurabilitySpy()

    def data_dir(self, manager_id: int) -> Path:
        return self.base_dir / f"m{manager_id}"

    async def start(self, manager_id: int) -> ManagerRuntime:
        runtime = ManagerRuntime(ManagerConfig(node_id=manager_id, peers=self.peers, data_dir=self.data_dir(manager_id),
                                               client_port=self.client_addresses[manager_id][1], events_jsonl=True,
                                               **self.config))
        self.spy.attach(runtime)
        self.runtimes[manager_id] = runtime
        self.tasks[manager_id] = asyncio.create_task(runtime.serve())
        await asyncio.sleep(0.05)
        return runtime

    async def start_all(self) -> ManagerRuntime:
        """Start every manager and return the leader they elect."""
        for manager_id in self.ids:
            await self.start(manager_id)
        return await self.leader()

    def a_follower(self, leader: ManagerRuntime) -> int:
        return next(i for i in self.ids if i != leader.id)

    async def stop(self, manager_id: int) -> None:
        self.runtimes.pop(manager_id).stop()
        await self.tasks.pop(manager_id)

    async def stop_all(self) -> None:
        for manager_id in list(self.runtimes):
            with contextlib.suppress(Exception):
                await self.stop(manager_id)

    async def leader(self, timeout_s: float = 10.0) -> ManagerRuntime:
        for _ in range(int(timeout_s / 0.02)):
            leaders = [r for r in self.runtimes.values() if r.node.role == "leader" and r.node.log.committed > 0]
            if len(leaders) == 1:
                return leaders[0]
            await asyncio.sleep(0.02)
        raise AssertionError("no leader elected")


def run(base_dir: Path, size: int, scenario: Callable[[InProcessCluster], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        cluster = InProcessCluster(base_dir, size, **config)
        try:
            await scenario(cluster)
        finally:
            await cluster.stop_all()
        assert cluster.spy.violations == [], cluster.spy.violations[:5]

    asyncio.run(main())


def put(key: str, value: str) -> bytes:
    return encode_command(op="put", key=key, value=value)


def test_one_manager_answers_propose_read_status_and_bad_requests(tmp_path: Path) -> None:
    async def scenario(cluster: InProcessCluster) -> None:
        await cluster.start(1)
        await cluster.leader()
        client = await ManagerClient.connect(*cluster.client_addresses[1])
        try:
            replies = await asyncio.gather(*(client.propose(put(f"k{i}", f"v{i}")) for i in range(20)))
            assert all(r["ok"] for r in replies)
            assert len({(r["index"], r["position"]) for r in replies}) == 20
            assert (await client.read("k7"))["value"] == "v7"
            assert (await client.read("absent"))["value"] is None
            status = await client.status()
            assert (status["manager_id"], status["role"], status["leader"]) == (1, "leader", 1)
            assert status["applied"] == status["commit"] >= max(r["index"] for r in replies)
            assert (await client.request("frobnicate"))["error"] == "bad_request"
            assert (await client.request("propose", data="not bytes"))["error"] == "bad_request"
        finally:
            await client.close()

    run(tmp_path, 1, scenario)


def test_followers_redirect_and_the_cluster_client_follows(tmp_path: Path) -> None:
    async def scenario(cluster: InProcessCluster) -> None:
        leader = await cluster.start_all()
        follower = cluster.a_follower(leader)
        direct = await ManagerClient.connect(*cluster.client_addresses[follower])
        try:
            for reply in (await direct.propose(put("a", "1")), await direct.read("a")):
                assert (reply["ok"], reply["error"], reply["leader"]) == (False, "not_leader", leader.id)
        finally:
            await direct.close()
        client = ClusterClient(cluster.client_addresses)
        client.leader = follower
        try:
            replies = await asyncio.gather(*(client.propose(put(f"k{i % 7}", str(i))) for i in range(300)))
            assert all(r["ok"] for r in replies)
            assert client.leader == leader.id
            last_of_k3 = max((r["index"], r["position"], i) for i, r in enumerate(replies) if i % 7 == 3)[2]
            assert (await client.read("k3"))["value"] == str(last_of_k3)
        finally:
            await client.close()
        assert {T.VOTE_RESP, T.APPEND_RESP, T.HEARTBEAT} <= cluster.spy.types_seen

    run(tmp_path, 3, scenario)


def test_a_restarted_manager_restores_its_state_and_writes_no_event_twice(tmp_path: Path) -> None:
    async def scenario(cluster: InProcessCluster) -> None:
        await cluster.start(1)
        await cluster.leader()
        client = await ManagerClient.connect(*cluster.client_addresses[1])
        for i in range(30):
            assert (await client.propose(put(f"k{i}", f"v{i}")))["ok"]
        await client.close()
        await cluster.stop(1)
        await cluster.start(1)
        await cluster.leader()
        client = await ManagerClient.connect(*cluster.client_addresses[1])
        assert (await client.read("k29"))["value"] == "v29"
        await client.close()
        events = read_events(cluster.data_dir(1))
        applied = [(e["log_index"], e["batch_position"]) for e in events if e["type"] == "ManagerCommandApplied"]
        assert len(applied) == len(set(applied)) == 30
        assert [e["restarted"] for e in events if e["type"] == "ManagerStarted"] == [False, True]

    run(tmp_path, 1, scenario)


def test_a_lagging_follower_catches_up_from_a_snapshot(tmp_path: Path) -> None:
    """Section 7: the leader compacted the entries the follower misses, so it sends InstallSnapshot."""

    async def scenario(cluster: InProcessCluster) -> None:
        leader = await cluster.start_all()
        lagging = cluster.a_follower(leader)
        await cluster.stop(lagging)
        client = ClusterClient(cluster.client_addresses)
        client.leader = leader.id
        for i in range(40):  # sequential: one entry each, so the log outgrows snapshot_every
            assert (await client.propose(put(f"k{i}", f"v{i}")))["ok"]
        await client.close()
        assert leader.node.log.snapshot.index > 0
        caught_up = await cluster.start(lagging)
        for _ in range(250):
            if caught_up.node.log.applied >= leader.node.log.committed:
                break
            await asyncio.sleep(0.02)
        assert caught_up.state.get("k39") == "v39" and caught_up.state.get("k0") == "v0"
        assert any(e["type"] == "SnapshotInstalled" for e in read_events(cluster.data_dir(lagging)))
        assert caught_up.store.stored().snapshot.index > 0

    run(tmp_path, 3, scenario, snapshot_every=10)


def test_the_leader_replicates_while_its_own_fsync_runs_and_answers_only_after_it(tmp_path: Path) -> None:
    """Raft dissertation 10.2.1: the leader's appends leave before its own save has returned (so
    its fsync and the followers' overlap instead of adding up), yet no client hears "ok" before
    the entry is durable on the leader too. Fails on a runtime that persists before sending."""

    async def scenario(cluster: InProcessCluster) -> None:
        leader = await cluster.start_all()
        in_save, release = threading.Event(), threading.Event()
        save = leader.store.save

        def held_save(ready: Ready) -> None:
            if any(e.data for e in ready.entries):  # a client's entry, not the leader's no-op
                in_save.set()
                release.wait(30)
            save(ready)

        leader.store.save = held_save  # type: ignore[method-assign]
        saved = {peer: 0 for peer in cluster.runtimes}  # the last index each follower's save returned
        for peer, runtime in cluster.runtimes.items():
            if runtime is not leader:
                runtime.store.save = _noting_save(runtime.store.save, saved, peer)  # type: ignore[method-assign]
        client = await ManagerClient.connect(*cluster.client_addresses[leader.id])
        try:
            answer = asyncio.ensure_future(client.propose(put("k", "v")))
            await _until(in_save.is_set, "the leader saving the entry")
            index = leader.node.log.last_index()
            stored = await _until(lambda: all(last >= index for peer, last in saved.items() if peer != leader.id),
                                  "followers storing", timeout_s=5.0, fail=False)
            assert not answer.done()  # a majority has it on disk, but not yet the leader itself
            release.set()
            assert (await answer)["ok"]
            assert stored, "the followers stored the entry only after the leader's own save returned"
        finally:
            release.set()
            await client.close()

    # Elections take 0.6-1.2 s (none while the leader's save is held); every leader save goes
    # through the disk thread, so holding it does not hold the loop all three managers share here.
    run(tmp_path, 3, scenario, tick_ms=40.0, inline_save_max_bytes=-1)


def test_the_leader_answers_committed_entries_while_it_saves_a_later_one(tmp_path: Path) -> None:
    """A put committed before the leader's next entry is answered while that entry's save is still
    running (it is durable on a majority including the leader already), and the next put only after
    its own save. Fails on a runtime that applies a Ready's committed entries after its save."""

    async def scenario(cluster: InProcessCluster) -> None:
        leader = await cluster.start_all()
        gates = {b"first-value": threading.Event(), b"second-value": threading.Event()}
        saving = {marker: threading.Event() for marker in gates}
        save = leader.store.save

        def held_save(ready: Ready) -> None:
            for marker, gate in gates.items():
                if any(marker in e.data for e in ready.entries):
                    saving[marker].set()
                    gate.wait(30)
            save(ready)

        leader.store.save = held_save  # type: ignore[method-assign]
        saved = {peer: 0 for peer in cluster.runtimes if peer != leader.id}
        for peer in saved:
            runtime = cluster.runtimes[peer]
            runtime.store.save = _noting_save(runtime.store.save, saved, peer)  # type: ignore[method-assign]
        first_client = await ManagerClient.connect(*cluster.client_addresses[leader.id])
        second_client = await ManagerClient.connect(*cluster.client_addresses[leader.id])
        try:
            first = asyncio.ensure_future(first_client.propose(put("k", "first-value")))
            await _until(saving[b"first-value"].is_set, "the leader saving the first entry")
            index = leader.node.log.last_index()
            await _until(lambda: all(last >= index for last in saved.values()), "followers storing the first entry")
            second = asyncio.ensure_future(second_client.propose(put("k", "second-value")))
            await _until(lambda: bool(leader.api.queued), "the second put queued at the leader")
            gates[b"first-value"].set()  # the acks for the first and the second put meet in one Ready
            await _until(saving[b"second-value"].is_set, "the leader saving the second entry")
            assert (await asyncio.wait_for(first, 5.0))["ok"]
            assert not second.done()
            gates[b"second-value"].set()
            assert (await second)["ok"]
        finally:
            for gate in gates.values():
                gate.set()
            await first_client.close()
            await second_client.close()

    run(tmp_path, 3, scenario, tick_ms=40.0, inline_save_max_bytes=-1)


@pytest.mark.parametrize(("committed", "new", "count"), [
    ([3, 4], [], 2),  # nothing new to save: every committed entry is durable already
    ([3, 4], [5, 6], 2),  # the new entries follow the committed ones
    ([3, 4, 5], [5], 2),  # a lone voter committed its new entry as it appended it
    ([], [5], 0),
])
def test_a_leader_applies_during_its_save_only_committed_entries_before_the_new_ones(
        committed: list[int], new: list[int], count: int) -> None:
    ready = Ready(entries=[Entry(i, 1) for i in new], committed_entries=[Entry(i, 1) for i in committed])
    assert durable_committed_count(ready) == count


def _noting_save(save: Callable[[Ready], None], saved: dict[int, int], peer: int) -> Callable[[Ready], None]:
    def noting_save(ready: Ready) -> None:
        save(ready)
        if ready.entries:
            saved[peer] = ready.entries[-1].index
    return noting_save


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0, fail: bool = True) -> bool:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    assert not fail, f"{what}: not within {timeout_s} s"
    return False


@pytest.mark.parametrize("text", ["", "1=host", "x=h:1", "1=h:1,1=h:2", "0=h:1", "1=:7001", "1=h:0", "1=h:65536"])
def test_bad_peer_lists_are_refused(text: str) -> None:
    from backends.manager.cli import parse_peers

    with pytest.raises(ValueError):
        parse_peers(text)


def test_peer_lists_and_the_status_table() -> None:
    from backends.manager.cli import parse_peers
    from backends.manager.client import format_status_table

    assert parse_peers("1=127.0.0.1:7001, 2=10.0.0.2:7002") == {1: ("127.0.0.1", 7001), 2: ("10.0.0.2", 7002)}
    table = format_status_table([
        {"id": 1, "address": "h:1", "reachable": True, "role": "leader", "term": 4, "leader": 1, "commit": 9,
         "applied": 9},
        {"id": 2, "address": "h:2", "reachable": False}])
    lines = table.splitlines()
    assert lines[0].split() == ["manager", "address", "role", "term", "leader", "commit", "applied"]
    assert lines[1].split() == ["1", "h:1", "leader", "4", "1", "9", "9"]
    assert lines[2].split() == ["2", "h:2", "unreachable", "-", "-", "-", "-"]
