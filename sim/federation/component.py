"""The federation component of a scenario run, and the one place a federation is assembled.

Theory of operation
-------------------
``assemble`` builds a ``FederationModel`` with its ``Recovery`` and schedules everything a run
does on the federation group's queue: the requests, a gossip round per cluster (each on its own
phase), the representatives' retries, async shipping, the leader's detection and evacuation
pump, WAN-aware leadership, the per-datacenter samples and the scripted datacenter faults. The
scenario run, the federation vopr and the formation benchmark all assemble it here, so they
exercise the same model. ``start`` (a ``sim.run`` component) does nothing unless the scenario
enables a federation -- a scenario without one draws no random number more and emits no event
more -- and otherwise drives the group's queue from a SimPy process (``sim.raft.component.drive``),
so federation events interleave with the rest of the model on one clock.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from random import Random
from typing import Any

from novacron.federation.config import FederationSection
from novacron.raft.node import RaftNode
from novacron.scenario import Scenario
from sim.context import SimContext
from sim.federation.model import RETRY_S, Emit, FederationModel, HostShape
from sim.federation.recovery import Recovery
from sim.federation.wan_moves import WanMoves
from sim.raft.cluster import Hook
from sim.raft.component import drive

LEADER_CHECK_S = 1.0


def host_shape(scenario: Scenario) -> HostShape:
    c, w, s, mig = scenario.cluster, scenario.workload, scenario.scheduler, scenario.migration
    return HostShape(cpu=c.host_cpu_cores * c.cpu_overcommit, memory_gib=c.host_memory_gib,
                     headroom_cpu_pct=s.headroom_cpu_pct, headroom_memory_pct=s.headroom_memory_pct,
                     flavours=tuple(zip(w.vm_cpu_cores, w.vm_memory_gib, strict=True)),
                     caps_per_host=mig.max_concurrent_per_host, caps_global=mig.max_concurrent_global)


def assemble(section: FederationSection, shape: HostShape, *, seed_rng: Callable[[str], Random], emit: Emit,
             hooks: list[Hook] | None = None, node_class: Callable[..., RaftNode] = RaftNode,
             plant: str | None = None, downtime_limit_ms: float = 500.0) -> FederationModel:
    model = FederationModel(section, shape, seed_rng=seed_rng, emit=emit, hooks=hooks, node_class=node_class)
    recovery = Recovery(model, plant=plant)
    model.schedule_workload()
    WanMoves(model, downtime_limit_ms).schedule()
    schedule_duties(model, recovery)
    names = model.matrix.datacenters
    if section.outage_datacenter and section.outage_at_s > 0:
        dc = names.index(section.outage_datacenter)
        model.raft.schedule(section.outage_at_s, lambda: recovery.fail(dc))
    if section.partition_datacenter and section.partition_at_s > 0:
        cut = names.index(section.partition_datacenter)
        model.raft.schedule(section.partition_at_s, lambda: recovery.cut(cut, section.partition_duration_s))
    return model


def schedule_duties(model: FederationModel, recovery: Recovery) -> None:
    """The periodic duties of the model's own clusters (each gossip round on its own phase) and of
    whoever leads: retries, async shipping, detection and evacuation, WAN-aware leadership, samples."""
    section = model.section
    for agent in model.own_clusters():
        phase_s = model.rng.random() * section.gossip_interval_s
        model.every(phase_s, section.gossip_interval_s, partial(model.gossip_round, agent))
    model.every(RETRY_S, RETRY_S, model.retry_round)
    if section.state_replication == "async":
        model.every(section.async_interval_s, section.async_interval_s, model.async_round)
    model.every(section.gossip_interval_s, section.gossip_interval_s, recovery.detect)
    if section.leader_preference:
        model.every(LEADER_CHECK_S, LEADER_CHECK_S, model.prefer_leader)
    model.every(section.sample_interval_s, section.sample_interval_s, recovery.sample)


def start(ctx: SimContext) -> FederationModel | None:
    section = ctx.scenario.federation
    if not section.enabled:
        return None

    def emit(cls: Any, **fields: Any) -> object:
        return ctx.recorder.emit(cls, source="federation", **fields)

    model = assemble(section, host_shape(ctx.scenario), seed_rng=ctx.seeds.python, emit=emit,
                     downtime_limit_ms=ctx.scenario.migration.downtime_ms)
    ctx.env.process(drive(ctx, model.raft, ctx.scenario.duration_s))
    return model

