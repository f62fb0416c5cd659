"""The ``memory-pool`` scenario under each allocator policy, with and without the scheduler's memory
affinity, spreading and packing: the analysis' memory-pooling metrics per variant.

    .venv/bin/python -m benchmarks.memory_pool_compare --seeds 7 8 9

Each row is one simulated run (deterministic for its seed); the metrics are modelled quantities
(``novacron.cluster.memory_pool``), not wall-clock times. ``pass`` is the verdict of the
scenario's required targets. Results: ``benchmarks/RESULTS_memory_pool.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, resolve_scenario, scenario_targets
from novacron.slo import evaluate
from sim.run import simulate

VARIANTS = tuple((strategy, policy, affinity) for strategy in ("spread", "pack")
                 for policy in ("pool_aware", "uniform") for affinity in (True, False))
COLUMNS = (("memory_pool.bandwidth_gb_s", "{:.1f}"), ("memory_pool.allocation_mean_ms", "{:.2f}"),
           ("memory_pool.allocation_p99_ms", "{:.2f}"), ("memory_pool.locality_index", "{:.3f}"),
           ("memory_pool.cross_node_pct", "{:.2f}"), ("memory_pool.peak_used_pct", "{:.1f}"),
           ("cluster.vms_rejected_pct", "{:.1f}"))


def variant(base: Scenario, strategy: str, policy: str, affinity: bool) -> Scenario:
    return dataclasses.replace(
        base, scheduler=dataclasses.replace(base.scheduler, strategy=strategy),
        memory_pool=dataclasses.replace(base.memory_pool, policy=policy, affinity=affinity))


def row(scenario: Scenario, seed: int) -> str:
    metrics = compute_metrics(list(simulate(scenario, seed).log))
    targets, _ = scenario_targets(scenario)
    verdict = evaluate(metrics, targets)
    failed = ", ".join(r.target.metric.removeprefix("memory_pool.") for r in verdict.failed) or "-"
    cells = [fmt.format(metrics[name]) if name in metrics else "—" for name, fmt in COLUMNS]
    p, m = scenario.scheduler, scenario.memory_pool
    return (f"| {p.strategy} | {m.policy} | {'on' if m.affinity else 'off'} | {seed} | " + " | ".join(cells)
            + f" | {'pass' if verdict.passed() else 'FAIL'} ({failed}) |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    args = parser.parse_args(argv)
    base = resolve_scenario("memory-pool")[0]
    print("| strategy | policy | affinity | seed | bandwidth GB/s | alloc mean ms | alloc p99 ms | locality "
          "| cross-node % | pool peak % | rejected % | verdict (failed) |")
    print("|" + "---|" * 12)
    for strategy, policy, affinity in VARIANTS:
        for seed in args.seeds:
            print(row(variant(base, strategy, policy, affinity), seed))


if __name__ == "__main__":
    main()
