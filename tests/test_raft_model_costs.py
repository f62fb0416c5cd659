"""The real managers' costs in the Raft model: per-message handling, the fsync before a vote or
an acknowledgement leaves, the boot phase of a fresh cluster (``ClusterSettings``), and the
partition-recovery experiment (issue 15 item 6)."""

from __future__ import annotations

from dataclasses import replace
from random import Random

import pytest

from novacron.raft.node import LEADER, RaftConfig
from novacron.statemachine import encode_command
from sim.network import LinkProfile, NetworkModel
from sim.raft.cluster import BootPhase, ClusterSettings, RaftCluster
from sim.raft.experiments import partition_recovery_times, real_manager_settings

RTT_S = 0.010
FIXED = LinkProfile("fixed", rtt_ms=RTT_S * 1000, jitter_ms=0.0, bandwidth_mbit_s=1e6)
"""No jitter and (nearly) no serialisation: every message takes exactly half the RTT."""


def cluster_with(handling_s: float, persist_s: float, boot: BootPhase | None = None, seed: int = 1) -> RaftCluster:
    # PreVote off so that a campaign is one round: the candidate's vote requests and the votes.
    settings = ClusterSettings(managers=3, raft=RaftConfig(node_id=1, pre_vote=False),
                               handling_s=handling_s, persist_s=persist_s, boot=boot)
    return RaftCluster(settings, NetworkModel(FIXED, Random(seed)), Random(seed + 1))


def elected_at_s(cluster: RaftCluster) -> float:
    cluster.campaign(1)  # at t = 0, long before any election timeout (150 ms)
    assert cluster.run_until(1.0, stop=lambda: cluster.leader() is not None)
    return cluster.now_s


def test_a_vote_round_takes_the_rtt_plus_two_handlings_and_two_fsyncs() -> None:
    # Raft paper Figure 2: the candidate persists its term and own vote before asking, a voter
    # persists its vote before answering; each of the two messages also pays the handling.
    ideal = elected_at_s(cluster_with(0.0, 0.0))
    costly = elected_at_s(cluster_with(0.002, 0.0005))
    assert ideal == pytest.approx(RTT_S, abs=1e-6)
    assert costly - ideal == pytest.approx(2 * (0.002 + 0.0005), abs=1e-6)


def test_a_leader_sends_its_appends_before_its_own_copy_is_durable() -> None:
    # Dissertation 10.2.1, as the real runtime does: the append leaves before the leader's fsync;
    # the follower's acknowledgement waits for the follower's. Commit = RTT + 2 handlings + 1 fsync.
    handling_s, persist_s = 0.002, 0.0005
    cluster = cluster_with(handling_s, persist_s)
    elected_at_s(cluster)
    cluster.run_until(cluster.now_s + 0.2)
    leader = cluster.leader()
    assert leader is not None and leader.role == LEADER
    target = leader.log.last_index() + 1
    proposed_at = cluster.now_s
    assert cluster.propose(leader.id, encode_command(op="put", key="k", value="v")) is not None
    assert cluster.run_until(proposed_at + 1.0, stop=lambda: leader.log.committed >= target)
    assert cluster.now_s - proposed_at == pytest.approx(RTT_S + 2 * handling_s + persist_s, abs=1e-6)


def test_the_links_come_up_with_the_dialers_backoff() -> None:
    boot = BootPhase(start_min_s=0.0, start_max_s=0.0, backoff_min_s=0.02, backoff_max_s=1.0)
    assert boot.link_up_s(0.0, 0.05) == pytest.approx(0.06)  # attempts at 0, 0.02, 0.06
    assert boot.link_up_s(0.10, 0.05) == 0.10  # the listener was up: the first dial works
    assert boot.link_up_s(0.0, 3.0) == pytest.approx(3.26)  # 0.02 .. 0.64, then 1 s apart


@pytest.mark.parametrize("seed", range(4))
def test_no_message_leaves_on_a_link_before_it_is_up(seed: int) -> None:
    boot = BootPhase(start_min_s=0.0, start_max_s=0.4)
    cluster = cluster_with(0.0, 0.0, boot, seed)
    sent: list[tuple[int, int, float]] = []
    transmit = cluster.network.transmit

    def recording(src: int, dst: int, size_bytes: int, now_s: float) -> list[float]:
        sent.append((src, dst, now_s))
        return transmit(src, dst, size_bytes, now_s)
    cluster.network.transmit = recording  # type: ignore[method-assign]
    assert cluster.managers == {}  # nobody has started at t = 0
    assert cluster.run_until(10.0, stop=lambda: cluster.leader() is not None)
    cluster.run_until(cluster.now_s + 0.5)
    assert sent
    assert all(at_s >= cluster.link_up_s[(src, dst)] for src, dst, at_s in sent)
    assert len(cluster.managers) == 3


def test_the_boot_phase_delays_formation_and_drops_early_votes() -> None:
    # Starts spread over 0.4 s: early campaigns reach only the peers already connected.
    boot = BootPhase(start_min_s=0.0, start_max_s=0.4)
    lost = 0
    for seed in range(6):
        cluster = cluster_with(0.0, 0.0, boot, seed)
        assert cluster.run_until(10.0, stop=lambda c=cluster: c.leader() is not None)  # type: ignore[misc]
        lost += cluster.messages_lost_at_boot
    assert lost > 0


def test_partition_recovery_takes_at_most_a_heartbeat_and_a_round_trip_or_two() -> None:
    settings = replace(real_manager_settings(5), boot=None)
    times_ms = partition_recovery_times(settings, FIXED, trials=12, seed=3)
    assert len(times_ms) == 12
    # After the heal the new leader's next heartbeat (<= 50 ms) reaches the old leader, whose
    # answer shows it lags; one more append round trip brings its log and commit index along.
    heartbeat_ms = settings.raft.heartbeat_ticks * settings.tick_s * 1000
    assert all(RTT_S * 1000 / 2 <= t <= heartbeat_ms + 3 * RTT_S * 1000 + 20 for t in times_ms), times_ms
