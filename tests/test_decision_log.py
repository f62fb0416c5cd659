"""The Raft control plane's state machine: snapshots that do not grow with the run, and a
follower that falls behind compaction catching up with a bounded number of snapshot installs."""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.raft.messages import Entry, EntryKind
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster
from sim.raft.control_plane import DecisionLog, decision_id_of, encode_decisions


def _entry(index: int, numbers: list[int]) -> Entry:
    return Entry(index, 1, EntryKind.NORMAL, encode_decisions([decision_id_of(n) for n in numbers]))


def _applied(numbers: list[int]) -> DecisionLog:
    log = DecisionLog()
    for index, start in enumerate(range(0, len(numbers), 10), start=1):
        log.apply(_entry(index, numbers[start:start + 10]))
    return log


def test_a_snapshot_does_not_grow_with_the_decisions_applied() -> None:
    few, many = _applied(list(range(100))), _applied(list(range(200_000)))
    # Keeping every id applied made this ~1.8 MB (and every restore re-split all of them).
    assert len(many.snapshot()) <= len(few.snapshot()) + 4, many.snapshot()[:80]
    restored = DecisionLog()
    restored.restore(many.snapshot())
    assert decision_id_of(199_999) in restored and decision_id_of(0) in restored
    assert decision_id_of(200_000) not in restored


@settings(max_examples=60)
@given(order=st.permutations(list(range(40))), repeats=st.lists(st.integers(0, 39), max_size=15),
       cut=st.integers(0, 55))
def test_restoring_a_snapshot_then_applying_the_rest_knows_exactly_what_was_applied(
        order: list[int], repeats: list[int], cut: int) -> None:
    """Decisions applied out of order (a re-proposal overtaken) and twice (a re-proposed copy):
    a snapshot taken anywhere, restored and followed by the remaining entries, gives the state
    of applying them all, and that state names exactly the decisions applied."""
    numbers = order + repeats
    whole = DecisionLog()
    for index, number in enumerate(numbers, start=1):
        whole.apply(_entry(index, [number]))
    prefix = DecisionLog()
    for index, number in enumerate(numbers[:cut], start=1):
        prefix.apply(_entry(index, [number]))
    resumed = DecisionLog()
    resumed.restore(prefix.snapshot())
    for index, number in enumerate(numbers[cut:], start=cut + 1):
        resumed.apply(_entry(index, [number]))
    assert resumed.snapshot() == whole.snapshot()
    assert {n for n in range(45) if decision_id_of(n) in prefix} == set(numbers[:cut])
    assert whole.snapshot() == b"40"  # all of 0..39 applied: the watermark alone


class Installs(Hook):
    def __init__(self) -> None:
        self.by_node: dict[int, int] = {}

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None:
        self.by_node[manager.node_id] = self.by_node.get(manager.node_id, 0) + 1


def _propose_for(cluster: RaftCluster, seconds: float, per_entry: int, every_s: float, first: int) -> int:
    """Propose ``per_entry`` new decisions every ``every_s`` to the leader for ``seconds``."""
    end_s = cluster.now_s + seconds
    number = first
    while cluster.now_s < end_s:
        leader = cluster.leader()
        if leader is not None:
            cluster.propose(leader.id, encode_decisions([decision_id_of(n) for n in range(number, number + per_entry)]))
            number += per_entry
        cluster.run_until(cluster.now_s + every_s)
    return number


def test_a_follower_behind_compaction_catches_up_with_few_snapshot_installs() -> None:
    """A follower down while 60,000 decisions are made restarts while they keep coming (an entry
    of 60 every 2 ms, a compaction every 50 entries, a 100 Mbit/s WAN link). With a snapshot
    holding every id applied (0.6-1.5 MB, 50-120 ms on the link) each one arrived behind the next
    compaction and the follower installed 17 snapshots in a row; now it installs one and follows."""
    installs = Installs()
    cluster = RaftCluster(ClusterSettings(managers=3, snapshot_every=50), NetworkModel(PROFILES["wan30"], Random(5)),
                          Random(6), state_machine=DecisionLog, hooks=[installs])
    cluster.run_until(3.0)
    leader = cluster.leader()
    assert leader is not None
    follower = next(node_id for node_id in cluster.managers if node_id != leader.id)
    cluster.crash(follower)
    number = _propose_for(cluster, 2.0, 60, 0.002, 0)
    cluster.restart(follower)
    _propose_for(cluster, 3.0, 60, 0.002, number)
    cluster.run_until(cluster.now_s + 1.0)
    node, leader = cluster.managers[follower].node, cluster.leader()
    assert node is not None and leader is not None
    assert node.log.applied == leader.log.applied, "the follower never caught up"
    assert installs.by_node.get(follower, 0) <= 3, f"snapshot installs: {installs.by_node}"
