"""Fault injection: host crashes, rack failures, correlated failures, manager crashes, partitions.

Theory of operation
-------------------
Each fault kind is one SimPy process. Failures of one kind form a Poisson process per component
(exponential times between failures with mean MTBF); the superposition over ``n`` up components
is again Poisson with rate ``n / MTBF``, so one process draws the next failure of *any* host and
then picks the host uniformly — one process for 1000 hosts, not 1000 processes. Each failed
component is repaired after a draw from the repair distribution (mean MTTR; exponential,
lognormal or Weibull, see ``novacron.capacity_config``), scheduled as a timeout callback.

- host crash: ``ClusterModel.fail_host``; with probability ``correlated_failure_pct`` one more up
  host *of the same rack* crashes at the same instant (shared power or top-of-rack switch, the
  commonest correlated failures in Ford et al., "Availability in Globally Distributed Storage
  Systems", OSDI 2010);
- rack failure: every up host of a uniformly chosen rack crashes; all come back together;
- manager crash and network partition: ``InjectedFaultStarted``/``Ended`` events and the model's
  the log's subscription -- the seam where the Raft managers and the network model attach.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np
import simpy

from novacron.capacity_config import FaultsConfig
from novacron.cluster.events import InjectedFaultEnded, InjectedFaultStarted
from sim.cluster_model import ClusterModel
from sim.context import SimContext

HOUR_S = 3600.0


def repair_time_s(rng: np.random.Generator, cfg: FaultsConfig) -> float:
    """One repair time with mean ``host_mttr_h`` from the configured distribution."""
    mean_s = cfg.host_mttr_h * HOUR_S
    if cfg.repair_distribution == "exponential":
        return float(rng.exponential(mean_s))
    if cfg.repair_distribution == "lognormal":
        sigma = cfg.repair_shape
        return float(rng.lognormal(math.log(mean_s) - sigma * sigma / 2, sigma))
    shape = cfg.repair_shape
    return float(mean_s / math.gamma(1.0 + 1.0 / shape) * rng.weibull(shape))


def _host_crashes(ctx: SimContext, model: ClusterModel) -> Generator[simpy.Event, None, None]:
    cfg = ctx.scenario.faults
    rng = ctx.seeds.numpy("faults.hosts")
    while True:
        up = np.flatnonzero(model.store.host_up)
        rate_per_s = max(up.size, 1) / (cfg.host_mtbf_h * HOUR_S)
        yield ctx.env.timeout(float(rng.exponential(1.0 / rate_per_s)))
        up = np.flatnonzero(model.store.host_up)
        if up.size == 0:
            continue
        host = int(rng.choice(up))
        crashed = [host] if model.fail_host(host, "host crash") else []
        if crashed and rng.random() * 100 < cfg.correlated_failure_pct:
            rack_mates = [h for h in model.topology.hosts_in_rack(int(model.topology.rack_of[host])).tolist()
                          if model.store.host_up[h]]
            if rack_mates:
                mate = int(rng.choice(rack_mates))
                model.fail_host(mate, "correlated crash")
                crashed.append(mate)
        for h in crashed:
            _schedule_recovery(ctx, model, [h], repair_time_s(rng, cfg))


def _schedule_recovery(ctx: SimContext, model: ClusterModel, hosts: list[int], after_s: float) -> None:
    def recover(_ev: simpy.Event) -> None:
        for h in hosts:
            model.recover_host(h)

    ctx.env.timeout(after_s).callbacks.append(recover)


def _rack_failures(ctx: SimContext, model: ClusterModel, mtbf_h: float) -> Generator[simpy.Event, None, None]:
    cfg = ctx.scenario.faults
    rng = ctx.seeds.numpy("faults.racks")
    racks = model.topology.racks
    while True:
        yield ctx.env.timeout(float(rng.exponential(mtbf_h * HOUR_S / racks)))
        rack = int(rng.integers(racks))
        hosts = [h for h in model.topology.hosts_in_rack(rack).tolist() if model.fail_host(h, "rack failure")]
        if hosts:
            _schedule_recovery(ctx, model, hosts, repair_time_s(rng, cfg))


def _hook_faults(ctx: SimContext, model: ClusterModel, kind: str, mtbf_h: float, duration_s: float,
                 targets: list[str]) -> Generator[simpy.Event, None, None]:
    """Manager crashes or partitions, one fault of this kind at a time: events, which whoever
    models the managers (a Raft-backed control plane) follows through the log's subscription."""
    rng = ctx.seeds.numpy(f"faults.{kind}")
    while True:
        yield ctx.env.timeout(float(rng.exponential(mtbf_h * HOUR_S)))
        target = targets[int(rng.integers(len(targets)))]
        ctx.recorder.emit(InjectedFaultStarted, source="faults", fault_kind=kind, fault_target=target,
                          planned_duration_s=duration_s)
        yield ctx.env.timeout(duration_s)
        ctx.recorder.emit(InjectedFaultEnded, source="faults", fault_kind=kind, fault_target=target)


def start(ctx: SimContext, model: ClusterModel) -> None:
    cfg = ctx.scenario.faults
    if not cfg.enabled:
        return
    env = ctx.env
    env.process(_host_crashes(ctx, model))
    if cfg.rack_mtbf_h is not None:
        env.process(_rack_failures(ctx, model, cfg.rack_mtbf_h))
    if cfg.manager_mtbf_h is not None:
        managers = [f"manager-{k}" for k in range(1, cfg.managers + 1)]  # the managers' own numbers
        env.process(_hook_faults(ctx, model, "manager_crash", cfg.manager_mtbf_h, cfg.manager_mttr_s, managers))
    if cfg.partition_mtbf_h is not None:
        zones = [f"zone-{z:02d}" for z in range(model.topology.zones)]
        env.process(_hook_faults(ctx, model, "network_partition", cfg.partition_mtbf_h,
                                 cfg.partition_duration_s, zones))
