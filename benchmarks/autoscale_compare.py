"""Autoscaling policies against a static cluster and an oracle on the ``autoscale-diurnal`` scenario.

    .venv/bin/python -m benchmarks.autoscale_compare --seeds 7 8 9
    .venv/bin/python -m benchmarks.autoscale_compare --seeds 7 --sweep 60 70 80 90

Each row is one simulated run (deterministic for its seed): powered-on host-hours (from
``HostPowerChanged``), SLATAH (``cluster.slatah_pct``, Beloglazov and Buyya 2012: mean over
active hosts of the share of active time at 100 % CPU) and VMs rejected. ``static`` keeps every
host on; the others start from ``initial_hosts``. ``--sweep`` reruns the scaling policies at
several utilisation targets to draw each one's host-hours/SLA curve (a policy is better only
if it needs fewer host-hours at an equal SLA). Results: ``benchmarks/RESULTS_autoscale.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, resolve_scenario
from sim.autoscaling import host_hours
from sim.run import simulate

SCENARIO = "autoscale-diurnal"
POLICIES = ("static", "threshold", "target", "predictive", "oracle")


@dataclass(frozen=True, slots=True)
class PolicyRun:
    policy: str
    seed: int
    target_pct: float
    host_hours: float
    slatah_pct: float
    vms_rejected: int
    vms_requested: int


def scenario_for(policy: str, *, base: Scenario | None = None, target_pct: float | None = None) -> Scenario:
    scenario = base if base is not None else resolve_scenario(SCENARIO)[0]
    a = scenario.autoscale
    target = a.target_pct if target_pct is None else target_pct
    # The threshold policy keeps its band around the shared target.
    changes = {"policy": policy, "target_pct": target, "high_pct": min(100.0, target + 15.0),
               "low_pct": max(0.0, target - 20.0)}
    if policy == "static":
        changes["initial_hosts"] = scenario.cluster.hosts
    return dataclasses.replace(scenario, autoscale=dataclasses.replace(a, **changes))


def run_policy(policy: str, seed: int, *, base: Scenario | None = None, target_pct: float | None = None) -> PolicyRun:
    scenario = scenario_for(policy, base=base, target_pct=target_pct)
    ctx = simulate(scenario, seed)
    metrics = compute_metrics(ctx.log)
    hosts = list(ctx.services.allocations.host_ids)
    return PolicyRun(policy=policy, seed=seed, target_pct=scenario.autoscale.target_pct,
                     host_hours=host_hours(ctx.log, hosts, scenario.duration_s),
                     slatah_pct=float(metrics.get("cluster.slatah_pct", 0.0)),
                     vms_rejected=int(metrics.get("cluster.vms_rejected", 0)),
                     vms_requested=int(metrics.get("cluster.vms_requested", 0)))


def table(runs: Sequence[PolicyRun]) -> str:
    lines = ["| policy | seed | target % | host-hours | SLATAH % | VMs rejected |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.policy} | {r.seed} | {r.target_pct:g} | {r.host_hours:.1f} | {r.slatah_pct:.3f} | "
              f"{r.vms_rejected} of {r.vms_requested} |" for r in runs]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--sweep", type=float, nargs="*", default=None,
                        help="utilisation targets (%%) to rerun the scaling policies at")
    args = parser.parse_args(argv)
    targets: list[float | None] = list(args.sweep) if args.sweep else [None]
    runs = [run_policy(policy, seed, target_pct=target) for seed in args.seeds for policy in args.policies
            for target in (targets if policy != "static" else [None])]
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
