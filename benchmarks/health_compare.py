"""Node health scoring on against off, same seeds, on ``faults-small`` with failing hardware.

    .venv/bin/python -m benchmarks.health_compare --seeds 1 2 3

The scenario is the built-in ``faults-small`` (8 hosts, four days) with ``--vms`` VMs (32: its 48
fill the hosts, leaving no room to evacuate or restart into), its decisions
through three Raft managers (``[raft] control_plane = "raft"``, LAN), random host crashes on
(``[faults]``, MTBF ``--host-mtbf-h`` per host) and the injected faults of ``sim.injected_faults``
(four of each kind) where a degraded NIC (``--nic-retransmit-pct`` retransmissions) or a slow
disk gives out at its end with ``--failure-pct`` chance and takes its host down for 4 h.

- ``off``: no health score, nobody acts;
- ``responder``: no health score; the anomaly monitor (``robust_window``, the settings of
  ``novacron faults``) and its responder drain a host it alerts on (``sim.anomaly_response``);
- ``on``: ``[scheduler] health_min_score`` / ``weight_health`` (exclude, prefer, evacuate) and
  ``[raft] leader_min_health`` (leadership preference); no monitor.

Figures: VMs that failed with their host (``VMFailed``), VM uptime and SLATAH (the run's metrics),
leader elections (``LeaderElected``), leadership transfers asked for health, migrations that moved
a VM (``MigrationFinished`` completed) and evacuation moves started. Results:
``benchmarks/RESULTS_anomaly.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from novacron import __version__
from novacron.anomaly.registry import DETECTORS
from novacron.cluster.events import HostFailed, RunFinished, RunStarted, VMFailed
from novacron.metrics import compute_metrics
from novacron.migration.events import MigrationFinished
from novacron.raft.events import LeaderElected, LeadershipTransferRequested
from novacron.scenario import Scenario, resolve_scenario
from novacron.scheduler.events import RebalancePlanned
from sim.anomaly_response import AnomalyMonitor, Responder
from sim.cluster_model import ClusterModel
from sim.context import SimContext
from sim.injected_faults import FaultInjector, InjectedFaultsConfig
from sim.run import compose

VARIANTS = ("off", "responder", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    health_min_score: float = 90.0
    weight_health: float = 1.0
    leader_min_health: float = 70.0
    failure_pct: float = 50.0
    nic_retransmit_pct: float = 10.0
    host_mtbf_h: float = 400.0
    vms: float = 32.0
    """faults-small's 48 VMs over-fill its 8 hosts (8 are rejected at once): no room to move to."""


@dataclass(frozen=True, slots=True)
class VariantRun:
    variant: str
    seed: int
    hosts_failed: int
    vms_failed: int
    vms_failed_warned: int
    """Those whose host failed after a warning: a degraded NIC or a slow disk that gave out."""
    uptime_pct: float
    slatah_pct: float
    leader_elections: int
    health_transfers: int
    migrations: int
    evacuation_moves: int
    cpu_s: float


def scenario_for(variant: str, settings: Settings, base: Scenario | None = None) -> Scenario:
    scenario = base if base is not None else resolve_scenario("faults-small")[0]
    on = variant == "on"
    scheduler = dataclasses.replace(scenario.scheduler, health_min_score=settings.health_min_score if on else 0.0,
                                    weight_health=settings.weight_health if on else 0.0)
    raft = dataclasses.replace(scenario.raft, control_plane="raft", network="lan", managers=3,
                               leader_min_health=settings.leader_min_health if on else 0.0)
    faults = dataclasses.replace(scenario.faults, enabled=True, host_mtbf_h=settings.host_mtbf_h)
    workload = dataclasses.replace(scenario.workload, vms=int(settings.vms))
    return dataclasses.replace(scenario, scheduler=scheduler, raft=raft, faults=faults, workload=workload)


def simulate_with_failing_hardware(scenario: Scenario, seed: int, settings: Settings, *,
                                   responder: bool = False) -> SimContext:
    ctx = SimContext.create(scenario, seed)
    ctx.recorder.emit(RunStarted, source="sim", scenario=scenario.name, seed=seed, runtime="sim",
                      version=__version__)
    model = next(c for c in compose(ctx) if isinstance(c, ClusterModel))
    injector = FaultInjector(ctx, model, InjectedFaultsConfig(failure_pct=settings.failure_pct,
                                                              nic_retransmit_pct=settings.nic_retransmit_pct))
    injector.start()
    if responder:
        AnomalyMonitor(ctx, DETECTORS["robust_window"], responder=Responder(ctx, model, injector))
    ctx.env.run(until=scenario.duration_s)
    ctx.recorder.emit(RunFinished, source="sim", duration_s=scenario.duration_s)
    return ctx


def run_variant(variant: str, seed: int, settings: Settings, base: Scenario | None = None) -> VariantRun:
    started = time.process_time()
    ctx = simulate_with_failing_hardware(scenario_for(variant, settings, base), seed, settings,
                                         responder=variant == "responder")
    events = list(ctx.log)
    m = compute_metrics(events)
    return VariantRun(
        variant=variant, seed=seed,
        hosts_failed=sum(isinstance(e, HostFailed) for e in events),
        vms_failed=sum(isinstance(e, VMFailed) for e in events),
        vms_failed_warned=sum(isinstance(e, VMFailed) and e.reason.endswith("gave out") for e in events),
        uptime_pct=float(m.get("cluster.uptime_pct", float("nan"))),
        slatah_pct=float(m.get("cluster.slatah_pct", float("nan"))),
        leader_elections=sum(isinstance(e, LeaderElected) for e in events),
        health_transfers=sum(isinstance(e, LeadershipTransferRequested) for e in events),
        migrations=sum(isinstance(e, MigrationFinished) and e.outcome == "completed" for e in events),
        evacuation_moves=sum(e.moves_planned for e in events
                             if isinstance(e, RebalancePlanned) and e.rebalance_mode == "evacuate"),
        cpu_s=time.process_time() - started)


HEADER = ("| variant | seed | hosts failed | VMs failed with their host (after a warning) | VM uptime % "
          "| SLATAH % | leader elections | transfers for health | migrations | evacuation moves | CPU s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def row(r: VariantRun) -> str:
    return (f"| {r.variant} | {r.seed} | {r.hosts_failed} | {r.vms_failed} ({r.vms_failed_warned}) "
            f"| {r.uptime_pct:.3f} | {r.slatah_pct:.3f} "
            f"| {r.leader_elections} | {r.health_transfers} | {r.migrations} | {r.evacuation_moves} | {r.cpu_s:.1f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=float, default=getattr(defaults, field.name))
    args = parser.parse_args(argv)
    settings = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})
    print(f"settings: {settings}\n\n{HEADER}")
    runs = []
    for seed in args.seeds:
        for variant in VARIANTS:
            runs.append(run_variant(variant, seed, settings))
            print(row(runs[-1]), flush=True)
    for variant in VARIANTS:
        mine = [r for r in runs if r.variant == variant]
        print(f"| {variant} | total | {sum(r.hosts_failed for r in mine)} | {sum(r.vms_failed for r in mine)} "
              f"({sum(r.vms_failed_warned for r in mine)}) | "
              f"{sum(r.uptime_pct for r in mine) / len(mine):.3f} (mean) | "
              f"{sum(r.slatah_pct for r in mine) / len(mine):.3f} (mean) | {sum(r.leader_elections for r in mine)} | "
              f"{sum(r.health_transfers for r in mine)} | {sum(r.migrations for r in mine)} | "
              f"{sum(r.evacuation_moves for r in mine)} | {sum(r.cpu_s for r in mine):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
