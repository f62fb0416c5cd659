"""Dissertation scenarios on a simulated cluster: PreVote, CheckQuorum, membership changes,
snapshots, leadership transfer, ReadIndex (Ongaro, "Consensus: Bridging Theory and Practice")."""

from __future__ import annotations

from random import Random

import pytest

from novacron.raft.messages import ConfChange
from novacron.raft.node import LEADER, RaftConfig, Stored
from novacron.statemachine import KeyValueStateMachine, encode_command
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster


def make_cluster(managers: int = 5, seed: int = 1, hooks: list[Hook] | None = None, snapshot_every: int = 0,
                 **raft: bool) -> RaftCluster:
    settings = ClusterSettings(managers=managers, snapshot_every=snapshot_every,
                               raft=RaftConfig(node_id=1, **raft))
    cluster = RaftCluster(settings,
                          NetworkModel(PROFILES["lan"], Random(seed)), Random(seed + 1), hooks=hooks)
    assert cluster.run_until(5.0, stop=lambda: cluster.leader() is not None), f"no leader (seed {seed})"
    cluster.run_until(cluster.now_s + 0.5)
    return cluster


def put(cluster: RaftCluster, key: str, value: str) -> None:
    leader = cluster.leader()
    assert leader is not None
    assert cluster.propose(leader.id, encode_command(op="put", key=key, value=value)) is not None


def kv(manager: Manager) -> dict[str, str]:
    machine = manager.state_machine
    assert isinstance(machine, KeyValueStateMachine)
    return machine.values


@pytest.mark.parametrize("seed", range(5))
def test_a_manager_partitioned_away_and_healed_does_not_force_a_leader_change(seed: int) -> None:
    """PreVote (dissertation 9.6): the isolated follower never bumps its term, so it cannot depose."""
    cluster = make_cluster(seed=seed)
    leader = cluster.leader()
    assert leader is not None
    follower = next(i for i in cluster.managers if i != leader.id)
    cluster.network.isolate(follower, cluster.managers)
    cluster.run_until(cluster.now_s + 3.0)  # ten election timeouts and more
    assert cluster.node(follower).term == leader.term  # type: ignore[union-attr]
    cluster.network.heal()
    cluster.run_until(cluster.now_s + 2.0)
    after = cluster.leader()
    assert after is not None and (after.id, after.term) == (leader.id, leader.term), f"seed {seed}"


def test_without_prevote_a_rejoining_manager_does_force_a_new_term() -> None:
    """The contrast case: without PreVote the isolated node's term runs ahead and disrupts on heal."""
    cluster = make_cluster(pre_vote=False)
    leader = cluster.leader()
    assert leader is not None
    term_before = leader.term
    follower = next(i for i in cluster.managers if i != leader.id)
    cluster.network.isolate(follower, cluster.managers)
    cluster.run_until(cluster.now_s + 3.0)
    assert cluster.node(follower).term > term_before  # type: ignore[union-attr]
    cluster.network.heal()
    cluster.run_until(cluster.now_s + 2.0)
    after = cluster.leader()
    assert after is not None and after.term > term_before


def test_check_quorum_a_leader_cut_off_from_its_quorum_steps_down() -> None:
    cluster = make_cluster()
    leader = cluster.leader()
    assert leader is not None
    term_before = leader.term
    cluster.network.isolate(leader.id, cluster.managers)
    cluster.run_until(cluster.now_s + 1.0)
    assert leader.role != LEADER
    new = cluster.leader()
    assert new is not None and new.id != leader.id and new.term > term_before


def test_check_quorum_survives_an_asymmetric_partition_where_the_leader_cannot_hear() -> None:
    """The leader's messages get out but no replies come back: it must step down, not linger."""
    cluster = make_cluster()
    leader = cluster.leader()
    assert leader is not None
    others = [i for i in cluster.managers if i != leader.id]
    cluster.network.partition([others, [leader.id]], symmetric=False)
    cluster.run_until(cluster.now_s + 1.5)
    assert leader.role != LEADER


def test_membership_adds_a_sixth_and_removes_the_leader_one_server_at_a_time() -> None:
    cluster = make_cluster()
    put(cluster, "k", "v1")
    leader = cluster.leader()
    assert leader is not None
    cluster.add_manager(6, Stored())
    assert cluster.propose_conf_change(leader.id, ConfChange("add", 6)) is not None
    assert cluster.propose_conf_change(leader.id, ConfChange("add", 7)) is None, "one change at a time"
    cluster.run_until(cluster.now_s + 1.0)
    assert all(m.node is not None and m.node.voters == (1, 2, 3, 4, 5, 6) for m in cluster.managers.values())
    assert kv(cluster.managers[6]) == {"k": "v1"}
    old = leader.id
    assert cluster.propose_conf_change(old, ConfChange("remove", old)) is not None
    cluster.run_until(cluster.now_s + 2.0)
    new = cluster.leader()
    assert new is not None and new.id != old and old not in new.voters and len(new.voters) == 5
    put(cluster, "k", "v2")
    cluster.run_until(cluster.now_s + 0.5)
    assert all(kv(cluster.managers[i]) == {"k": "v2"} for i in new.voters)


def test_membership_never_exceeds_seven_voters() -> None:
    cluster = make_cluster(managers=7)
    leader = cluster.leader()
    assert leader is not None
    cluster.add_manager(8, Stored())
    assert cluster.propose_conf_change(leader.id, ConfChange("add", 8)) is None


class _Snapshots(Hook):
    def __init__(self) -> None:
        self.installed: list[tuple[int, int]] = []

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None:
        self.installed.append((manager.node_id, index))


def test_install_snapshot_brings_a_far_behind_manager_up_to_date() -> None:
    """Section 7: entries the follower needs were compacted, so the leader sends its snapshot."""
    hook = _Snapshots()
    cluster = make_cluster(snapshot_every=10, hooks=[hook])
    leader = cluster.leader()
    assert leader is not None
    lagging = next(i for i in cluster.managers if i != leader.id)
    cluster.crash(lagging)
    for i in range(60):
        put(cluster, f"k{i % 7}", str(i))
        cluster.run_until(cluster.now_s + 0.005)
    assert leader.log.snapshot.index >= 50
    cluster.restart(lagging)
    cluster.run_until(cluster.now_s + 1.0)
    assert any(node_id == lagging for node_id, _ in hook.installed)
    assert kv(cluster.managers[lagging]) == kv(cluster.managers[leader.id])
    assert cluster.node(lagging).log.last_index() == leader.log.last_index()  # type: ignore[union-attr]


def test_a_restarted_manager_recovers_its_state_from_snapshot_and_log() -> None:
    cluster = make_cluster(snapshot_every=8)
    for i in range(30):
        put(cluster, "x", str(i))
        cluster.run_until(cluster.now_s + 0.005)
    cluster.run_until(cluster.now_s + 0.2)
    victim = 3
    cluster.crash(victim)
    cluster.restart(victim)
    assert kv(cluster.managers[victim]) == {"x": "29"}, "persisted commit index lets it re-apply at once"


def test_leadership_transfer_hands_over_within_a_round_trip() -> None:
    """Dissertation 3.10: the target gets TimeoutNow and wins at once (no election timeout)."""
    cluster = make_cluster()
    leader = cluster.leader()
    assert leader is not None
    target = next(i for i in cluster.managers if i != leader.id)
    term_before = leader.term
    started = cluster.now_s
    assert cluster.transfer_leadership(leader.id, target)
    cluster.run_until(cluster.now_s + 1.0, stop=lambda: (cluster.leader() or leader).id == target)
    new = cluster.leader()
    assert new is not None and new.id == target and new.term == term_before + 1
    assert cluster.now_s - started < 0.05, "no election timeout waited"


class _Reads(Hook):
    def __init__(self) -> None:
        self.served: dict[bytes, tuple[int, str | None]] = {}

    def read_ready(self, cluster: RaftCluster, manager: Manager, read: object) -> None:
        context = read.context  # type: ignore[attr-defined]
        self.served[context] = (manager.node_id, kv(manager).get("k"))


def test_read_index_sees_every_write_acknowledged_before_it() -> None:
    hook = _Reads()
    cluster = make_cluster(hooks=[hook])
    leader = cluster.leader()
    assert leader is not None
    put(cluster, "k", "1")
    cluster.run_until(cluster.now_s + 0.1)
    assert cluster.read_index(leader.id, b"r1")
    cluster.run_until(cluster.now_s + 0.1)
    assert hook.served[b"r1"] == (leader.id, "1")


def test_read_index_is_not_served_by_a_leader_that_lost_its_quorum() -> None:
    """Dissertation 6.4: the heartbeat round confirms leadership; a deposed leader cannot answer."""
    hook = _Reads()
    cluster = make_cluster(hooks=[hook], check_quorum=False)
    leader = cluster.leader()
    assert leader is not None
    cluster.network.isolate(leader.id, cluster.managers)
    assert cluster.read_index(leader.id, b"stale")
    cluster.run_until(cluster.now_s + 1.0)
    assert b"stale" not in hook.served


def test_held_ticks_let_a_steady_cluster_commit_by_messages_alone_then_resume_shifted() -> None:
    """While ticks are held no manager's clock moves (no heartbeat, no election), yet a proposal
    commits everywhere by messages; on release every tick is due again, shifted by the held time."""
    cluster = make_cluster()
    leader = cluster.leader()
    assert leader is not None
    ticks_before = sorted(e[0] for e in cluster._queue if e[2] == 0)
    elapsed = {m.node_id: m.node.election_elapsed for m in cluster.alive() if m.node is not None}
    cluster.hold_ticks()
    put(cluster, "k", "v")
    cluster.run_until(cluster.now_s + 10.0)  # 10 s: many election timeouts, were the clocks running
    assert cluster.leader() is leader and all(kv(m) == {"k": "v"} for m in cluster.managers.values())
    assert {m.node_id: m.node.election_elapsed for m in cluster.alive() if m.node is not None} == elapsed
    cluster.release_ticks()
    ticks_after = sorted(e[0] for e in cluster._queue if e[2] == 0)
    assert ticks_after == pytest.approx([t + 10.0 for t in ticks_before])
