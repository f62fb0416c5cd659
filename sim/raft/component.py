"""The stand-alone Raft managers of a scenario run (``[raft] simulate_s`` with the direct control plane).

Theory of operation
-------------------
With ``control_plane = "direct"`` the run's decisions do not go through the managers, but the
Raft metrics (formation, failover, partition recovery) are still measured on the configured
managers: this component builds a ``RaftCluster`` of ``raft.managers`` managers over the
scenario's network profile and drives it from a SimPy process for ``simulate_s`` seconds -- the
process sleeps until the cluster's next event, then lets the cluster catch up to ``env.now``, so
Raft events interleave with the rest of the model on one clock. The managers replicate no
commands of their own: each new leader's empty entry is what commits (Raft section 8), which is
what formation and failover measure. The scripted faults (``ScriptedFaults``: a leader crash and
restart, a partition isolating the leader and its heal) happen inside that window. With
``control_plane = "raft"`` the managers run the decisions instead (``sim.raft.control_plane``)
and this component only records the configuration metrics.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from novacron.raft.metrics import raft_config_metrics
from novacron.statemachine import KeyValueStateMachine
from sim.context import SimContext
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import RaftCluster
from sim.raft.reporter import RaftReporter
from sim.raft.scripted_faults import ScriptedFaults, settings_for

STEP_EPSILON_S = 1e-9


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
                          state_machine=KeyValueStateMachine, hooks=[reporter])
    ScriptedFaults(cluster, reporter, section, at=cluster.schedule, now_s=lambda: cluster.now_s).schedule()
    ctx.env.process(drive(ctx, cluster, section.simulate_s))
    return cluster


def drive(ctx: SimContext, cluster: RaftCluster, until_s: float) -> Generator[Any, Any, None]:
    while True:
        next_s = cluster.next_time_s()
        if next_s is None or next_s > until_s:
            return
        if next_s > ctx.env.now:
            yield ctx.env.timeout(next_s - ctx.env.now)
        cluster.run_until(ctx.env.now + STEP_EPSILON_S)
