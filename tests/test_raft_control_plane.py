"""The Raft-backed control plane: decisions take effect at commit, survive failovers, repeat per seed."""

from __future__ import annotations

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from novacron.app.eventstore import event_log_sha256
from novacron.cluster.events import VMFailed, VMPlaced, VMRequested
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.raft.messages import Entry
from novacron.scenario import builtin_scenario_text, loads_scenario
from sim import Simulation
from sim.allocation import AllocationStore
from sim.context import SimContext
from sim.control_plane import Placer
from sim.raft.cluster import Hook, Manager, RaftCluster
from sim.raft.control_plane import RaftControlPlane, decision_ids
from sim.run import simulate
from tests.test_capacity_model import _scenario_text, check_conservation


def _raft_text(base: str, *, leader_crash_at_s: float = 0.0, manager_mtbf_h: float | None = None,
               partition_mtbf_h: float | None = None) -> str:
    faults = ""
    if manager_mtbf_h is not None:
        faults += f"manager_mtbf_h = {manager_mtbf_h}\nmanager_mttr_s = 40.0\nmanagers = 5\n"
    if partition_mtbf_h is not None:
        faults += f"partition_mtbf_h = {partition_mtbf_h}\npartition_duration_s = 30.0\n"
    text = base.replace("[faults]\n", "[faults]\n" + faults)
    return text.replace("[raft]\nsimulate_s = 0.0\n",
                        f'[raft]\nsimulate_s = 0.0\ncontrol_plane = "raft"\nnetwork = "wan30"\n'
                        f"leader_crash_at_s = {leader_crash_at_s}\nrestart_after_s = 20.0\npartition_at_s = 0.0\n")


class CommitChecker(Hook):
    """At the first apply of each decision: its entry is stored on a quorum and the decision
    has not taken effect yet (the VM of a placement is not allocated)."""

    def __init__(self, plane: RaftControlPlane) -> None:
        self.plane = plane
        self.checked = 0

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        if not entry.data:
            return
        for decision_id in decision_ids(entry.data):
            pending = self.plane.pending.get(decision_id)
            if pending is None:
                continue
            stored = sum(1 for m in cluster.managers.values()
                         if m.node is not None and m.node.log.last_index() >= entry.index
                         and m.node.log.term(entry.index) == entry.term)
            assert stored > len(cluster.managers) // 2, "a decision applied before a quorum stored it"
            assert not pending.decision.triggered
            if pending.kind == "place":
                assert pending.vm.vm_id not in self.plane.store.vm_host, "placed before commit"
            self.checked += 1


def test_decisions_take_effect_only_when_committed() -> None:
    text = _raft_text(_scenario_text(4, 40, 2.0, 1500.0, 1.0, migrations=10), leader_crash_at_s=1000.0)
    sim = Simulation(loads_scenario(text, origin="x"), seed=3)
    plane = sim.model.control if sim.model is not None else None
    assert isinstance(plane, RaftControlPlane)
    checker = CommitChecker(plane)
    plane.cluster.hooks.insert(0, checker)  # before the plane's own hook decides
    sim.run()
    assert checker.checked >= 40
    requested = {e.vm_id: e.t_s for e in sim.ctx.log.of_type(VMRequested)}
    first_placed = {}
    for e in sim.ctx.log.of_type(VMPlaced):
        first_placed.setdefault(e.vm_id, e.t_s)
    # A commit needs a round trip to a quorum over 30 ms RTT links: never instantaneous.
    assert all(first_placed[v] - requested[v] >= 0.010 for v in first_placed)


@settings(max_examples=16)
@given(hosts=st.integers(1, 5), vms=st.integers(0, 40), crash_at_s=st.sampled_from([0.0, 700.0, 3000.0]),
       manager_mtbf_h=st.sampled_from([None, 0.3]), partition_mtbf_h=st.sampled_from([None, 0.5]),
       migrations=st.sampled_from([0, 10]), seed=st.integers(0, 2**32), steps=st.integers(1, 4))
def test_failovers_delay_but_never_lose_or_duplicate_decisions(
        hosts: int, vms: int, crash_at_s: float, manager_mtbf_h: float | None, partition_mtbf_h: float | None,
        migrations: int, seed: int, steps: int) -> None:
    base = _scenario_text(hosts, vms, 1.0, 1500.0, 1.0, rack_mtbf_h=3.0, correlated_pct=50.0, migrations=migrations)
    text = _raft_text(base, leader_crash_at_s=crash_at_s, manager_mtbf_h=manager_mtbf_h,
                      partition_mtbf_h=partition_mtbf_h)
    note(f"seed={seed}\n{text}")
    sim = Simulation(loads_scenario(text, origin="prop.toml"), seed=seed)
    plane = sim.model.control if sim.model is not None else None
    assert isinstance(plane, RaftControlPlane)
    for k in range(1, steps + 1):
        sim.run(until_s=sim.scenario.duration_s * k / steps - 0.123)
        check_conservation(sim, pending_ok=True)
        # Never lost: whatever is still pending was asked recently (a failover, then a commit).
        stale = [p for p in plane.pending.values() if sim.now_s - p.asked_s > 60.0]
        assert not stale, f"decisions pending for over a minute: {stale[:3]}"
    # Never duplicated: a VM is placed once, plus once per failure it was restarted after.
    failures: dict[str, int] = {}
    for ev in sim.ctx.log.of_type(VMFailed):
        failures[ev.vm_id] = failures.get(ev.vm_id, 0) + 1
    placements: dict[str, int] = {}
    for placed in sim.ctx.log.of_type(VMPlaced):
        placements[placed.vm_id] = placements.get(placed.vm_id, 0) + 1
    assert all(n <= 1 + failures.get(vm_id, 0) for vm_id, n in placements.items())
    assert len(plane.decided) == plane._next_id - len(plane.pending)


def _raft_control(leader_crash_at_s: float) -> str:
    return builtin_scenario_text("raft-control").replace(
        "leader_crash_at_s = 7.0", f"leader_crash_at_s = {leader_crash_at_s}")


def test_a_leader_crash_shows_as_placement_latency() -> None:
    with_crash = compute_metrics(simulate(loads_scenario(_raft_control(7.0), origin="x"), 7).log)
    without = compute_metrics(simulate(loads_scenario(_raft_control(0.0), origin="x"), 7).log)
    print("p99 with/without a leader crash (ms):", with_crash["cluster.placement_latency_p99_ms"],
          without["cluster.placement_latency_p99_ms"])
    assert with_crash["cluster.placement_latency_p99_ms"] > 2 * without["cluster.placement_latency_p99_ms"]
    # A request waiting out the failover waits at least one election timeout (150 ms); commits
    # alone take a few 30 ms round trips.
    assert with_crash["cluster.placement_latency_max_ms"] > 150.0
    assert without["cluster.placement_latency_max_ms"] < 150.0


def test_same_seed_same_event_log() -> None:
    text = _raft_control(7.0)
    first = simulate(loads_scenario(text, origin="x"), 11).log
    second = simulate(loads_scenario(text, origin="x"), 11).log
    assert event_log_sha256(list(first)) == event_log_sha256(list(second))


def _ticking(ctx: SimContext, store: AllocationStore, placer: Placer | None) -> RaftControlPlane:
    return RaftControlPlane(ctx, store, placer, freeze_when_idle=False)


def test_freezing_an_idle_cluster_does_not_change_the_decisions() -> None:
    """Freezing changes only the random draws of skipped heartbeats: the same VMs get placed and
    the placement latency stays within the failover's scale."""
    text = _raft_text(_scenario_text(3, 30, 50.0, None, 1.0), leader_crash_at_s=0.0).replace(
        "duration_s = 14400.0", "duration_s = 700.0").replace("arrival_window_s = 7200.0", "arrival_window_s = 600.0")
    frozen = Simulation(loads_scenario(text, origin="x"), seed=5).run().ctx.log
    ticking = Simulation(loads_scenario(text, origin="x"), seed=5, control_plane=_ticking).run().ctx.log
    assert {e.vm_id for e in frozen.of_type(VMPlaced)} == {e.vm_id for e in ticking.of_type(VMPlaced)}
    assert len(frozen) == len(ticking)


def test_the_control_plane_key_is_validated() -> None:
    with pytest.raises(ConfigError):
        loads_scenario('[raft]\ncontrol_plane = "paxos"\n', origin="x")


def _stepping_with_simpy(ctx: SimContext, store: AllocationStore, placer: Placer | None) -> RaftControlPlane:
    return RaftControlPlane(ctx, store, placer, run_ahead=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stepping_ahead_of_simpy_is_the_same_run(seed: int) -> None:
    """The driver steps the cluster ahead of SimPy's clock and does what the steps apply or
    record (elections, formation, recoveries) when SimPy gets there: the event log must be bit
    for bit the one of waiting for SimPy at every cluster event, through manager crashes,
    partitions, a leader crash and migrations."""
    base = _scenario_text(10, 60, 1.0, 1500.0, 1.0, rack_mtbf_h=3.0, correlated_pct=50.0, migrations=10)
    text = _raft_text(base, leader_crash_at_s=700.0, manager_mtbf_h=0.3, partition_mtbf_h=0.5).replace(
        "duration_s = 14400.0", "duration_s = 3600.0").replace("arrival_window_s = 7200.0", "arrival_window_s = 1800.0")
    sim = Simulation(loads_scenario(text, origin="x"), seed=seed)
    plane = sim.model.control if sim.model is not None else None
    assert isinstance(plane, RaftControlPlane)
    ahead = sim.run().ctx.log
    waiting = Simulation(loads_scenario(text, origin="x"), seed=seed, control_plane=_stepping_with_simpy).run().ctx.log
    assert len(ahead.of_type(VMPlaced)) >= 40 and plane.steps_ahead > 100 and plane.reporter.deferred > 0
    assert event_log_sha256(list(ahead)) == event_log_sha256(list(waiting))
