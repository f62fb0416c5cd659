"""The Raft managers as a component of a scenario run (``[raft]`` section).

Theory of operation
-------------------
Builds a ``RaftCluster`` of ``raft.managers`` managers over the scenario's network profile,
with ``ClusterStateMachine``s that report every applied placement/migration command, and
drives it from a SimPy process: the process sleeps until the cluster's next event, then lets
the cluster catch up to ``env.now``, so Raft events interleave with the rest of the model on
one clock. The managers are simulated for ``simulate_s`` seconds only (the default run keeps
Raft to a few hundred milliseconds of wall time); the scripted faults -- a leader crash and
restart, a partition isolating the leader and its heal -- happen inside that window.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from novacron.raft.messages import NO_NODE
from novacron.raft.metrics import raft_config_metrics
from novacron.raft.scenario import RaftSection
from novacron.statemachine import ClusterStateMachine, encode_command
from sim.context import SimContext
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, RaftCluster
from sim.raft.reporter import RaftReporter

STEP_EPSILON_S = 1e-9


def settings_for(section: RaftSection) -> ClusterSettings:
    return ClusterSettings(managers=section.managers, tick_s=section.tick_ms / 1000,
                           election_ticks_min=section.election_ticks_min,
                           election_ticks_max=section.election_ticks_max, heartbeat_ticks=section.heartbeat_ticks,
                           pre_vote=section.pre_vote, check_quorum=section.check_quorum,
                           snapshot_every=section.snapshot_every)


def start(ctx: SimContext) -> RaftCluster | None:
    section = ctx.scenario.raft
    ctx.config_metrics.update(raft_config_metrics(
        managers=section.managers, tick_ms=section.tick_ms, heartbeat_ticks=section.heartbeat_ticks,
        election_ticks_min=section.election_ticks_min, election_ticks_max=section.election_ticks_max,
        formation_timeout_s=section.formation_timeout_s))
    if section.simulate_s <= 0 or section.control_plane == "raft":
        return None  # with control_plane = "raft" the managers run in sim/raft/control_plane.py
    reporter = RaftReporter(ctx.recorder)
    network = NetworkModel(PROFILES[section.network], ctx.seeds.python("raft.network"))
    cluster = RaftCluster(settings_for(section), network, ctx.seeds.python("raft.cluster"),
                          state_machine=lambda: ClusterStateMachine(), hooks=[reporter])
    for manager in cluster.managers.values():
        manager.state_machine = ClusterStateMachine(ctx.recorder, source=f"manager-{manager.node_id}")
    _schedule_faults(cluster, reporter, section)
    _schedule_commands(cluster, section)
    ctx.env.process(_drive(ctx, cluster, section.simulate_s))
    return cluster


def _drive(ctx: SimContext, cluster: RaftCluster, until_s: float) -> Generator[Any, Any, None]:
    while True:
        next_s = cluster.next_time_s()
        if next_s is None or next_s > until_s:
            return
        if next_s > ctx.env.now:
            yield ctx.env.timeout(next_s - ctx.env.now)
        cluster.run_until(ctx.env.now + STEP_EPSILON_S)


def _schedule_faults(cluster: RaftCluster, reporter: RaftReporter, section: RaftSection) -> None:
    if section.leader_crash_at_s > 0:
        def crash_leader() -> None:
            leader = cluster.leader()
            if leader is None:
                cluster.schedule(cluster.now_s + 0.1, crash_leader)
                return
            victim = leader.id
            cluster.crash(victim)
            cluster.schedule(cluster.now_s + section.restart_after_s, lambda: cluster.restart(victim))
        cluster.schedule(section.leader_crash_at_s, crash_leader)
    if section.partition_at_s > 0:
        def partition() -> None:
            leader = cluster.leader()
            isolated = leader.id if leader is not None else min(cluster.managers)
            groups = [[isolated], [i for i in sorted(cluster.managers) if i != isolated]]
            cluster.network.partition(groups)
            reporter.partitioned(cluster, groups, True)

            def heal() -> None:
                cluster.network.heal()
                reporter.healed(cluster, groups)
            cluster.schedule(cluster.now_s + section.partition_duration_s, heal)
        cluster.schedule(section.partition_at_s, partition)


def _schedule_commands(cluster: RaftCluster, section: RaftSection) -> None:
    """A trickle of placements and migrations through the leader, as the scheduler would send."""
    counter = [0]

    def send() -> None:
        leader = cluster.leader()
        if leader is not None and leader.leader != NO_NODE:
            k = counter[0]
            vm, host = f"vm-{k // 3:04d}", f"host-{k % 7:04d}"
            op = ("place", "start_migration", "complete_migration")[k % 3]
            cluster.propose(leader.id, encode_command(op=op, vm_id=vm, host_id=host))
            counter[0] += 1
        if cluster.now_s + section.command_interval_s < section.simulate_s:
            cluster.schedule(cluster.now_s + section.command_interval_s, send)
    cluster.schedule(section.command_interval_s, send)
