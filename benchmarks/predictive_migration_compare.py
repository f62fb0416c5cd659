"""Predictive against reactive migration on the ``predictive-migration`` scenario, same seeds.

    .venv/bin/python -m benchmarks.predictive_migration_compare --seeds 7 8 9

Variants: ``none`` (no rebalancing), ``rebalancer`` (the existing reactive rebalancer, balance
mode: it evens reservations as they are), ``reactive-cpu`` (the predictive migrator with a zero
horizon: it moves once the smoothed demand is over the ceiling) and ``predictive`` (a Holt
forecast 15 minutes ahead). Moves are ``VMMoved`` events; SLA figures are the run's metrics.
Results: ``benchmarks/RESULTS_prediction.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from novacron.cluster.events import VMMoved
from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, resolve_scenario
from sim.run import simulate

SCENARIO = "predictive-migration"
VARIANTS = ("none", "rebalancer", "reactive-cpu", "predictive")


@dataclass(frozen=True, slots=True)
class VariantRun:
    variant: str
    seed: int
    slatah_pct: float
    unserved_cpu_pct: float
    cpu_ready_p99_pct: float
    moves: int


def scenario_for(variant: str, *, base: Scenario | None = None) -> Scenario:
    scenario = base if base is not None else resolve_scenario(SCENARIO)[0]
    rebalance = "balance" if variant == "rebalancer" else "off"
    prediction = dataclasses.replace(scenario.prediction, migration=variant in ("reactive-cpu", "predictive"),
                                     horizon_s=0.0 if variant == "reactive-cpu" else scenario.prediction.horizon_s)
    return dataclasses.replace(scenario, scheduler=dataclasses.replace(scenario.scheduler, rebalance=rebalance),
                               prediction=prediction)


def run_variant(variant: str, seed: int, *, base: Scenario | None = None) -> VariantRun:
    ctx = simulate(scenario_for(variant, base=base), seed)
    m = compute_metrics(ctx.log)
    return VariantRun(variant=variant, seed=seed, slatah_pct=float(m.get("cluster.slatah_pct", 0.0)),
                      unserved_cpu_pct=float(m.get("cluster.unserved_cpu_pct", 0.0)),
                      cpu_ready_p99_pct=float(m.get("cluster.cpu_ready_p99_pct", 0.0)),
                      moves=sum(1 for e in ctx.log if isinstance(e, VMMoved)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    args = parser.parse_args(argv)
    print("| variant | seed | SLATAH % | unserved CPU % | CPU ready p99 % | moves |\n|---|---|---|---|---|---|")
    for seed in args.seeds:
        for variant in VARIANTS:
            r = run_variant(variant, seed)
            print(f"| {r.variant} | {r.seed} | {r.slatah_pct:.3f} | {r.unserved_cpu_pct:.3f} | "
                  f"{r.cpu_ready_p99_pct:.2f} | {r.moves} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
