"""The cost of one rebalancing round against the number of VMs, for a fixed number of moves.

A balance round plans at most ``max_moves_total`` (10) moves. With the incremental
``Placements`` index and the what-if on the live table, its cost should follow the hosts and
the moves, not the VMs. This builds one skewed cluster of ``--hosts`` hosts per VM count (hot
hosts carry twice the load of the others, anti-affinity groups of three as the simulation
makes them), then times ``plan_balance`` on it two ways in the same process:

- ``incremental``: the index kept by its owner (as ``SimScheduler`` does), passed in;
- ``rebuilt``: a list of placed VMs, so the round builds the index over every VM first (the
  shape of a round before the index was kept; the table copy it also made is not counted).

Run: ``.venv/bin/python -m benchmarks.bench_rebalance_scale --vms 10000 50000 200000``. The ratio
column is a round's time at that VM count over its time at the smallest; results and load
average go in ``benchmarks/RESULTS_capacity.md`` ("Scale").
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from novacron.scheduler.admission import ConcurrencyCaps
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.rebalance import PlacedVM, Placements, RebalanceConfig, RebalancePlan, plan_balance
from novacron.scheduler.state import HostTable, PlacementRequest

FLAVOURS = [(1, 2.0, 0.05, 100.0), (2, 4.0, 0.1, 200.0), (2, 8.0, 0.1, 200.0), (4, 16.0, 0.2, 400.0)]


def skewed_cluster(hosts: int, vms: int, seed: int = 7) -> tuple[HostTable, list[PlacedVM]]:
    """Hosts sized so ``vms`` fit with headroom; the first tenth of the hosts is twice as busy."""
    per_host = vms / hosts
    table = HostTable.uniform(hosts, cpu=8.0 * per_host, memory_gib=24.0 * per_host, network_gbps=1e4,
                              iops=1e9, hosts_per_rack=20)
    rng = np.random.default_rng(seed)
    weight = np.where(np.arange(hosts) < hosts // 10, 2.0, 1.0)
    rows = rng.choice(hosts, size=vms, p=weight / weight.sum())
    placed = []
    for n, row in enumerate(rows.tolist()):
        request = PlacementRequest(vm_id=f"vm-{n:07d}", demand=FLAVOURS[n % len(FLAVOURS)],
                                   anti_affinity_group=f"app-{n // 3}")
        while table.groups.get(f"app-{n // 3}", {}).get(row):
            row = (row + 1) % hosts  # replicas of one app on different hosts
        placed.append(PlacedVM(request, row, table.allocate(row, request)))
    return table, placed


def time_round(plan: Callable[[], RebalancePlan], repeats: int) -> tuple[float, RebalancePlan]:
    best, result = float("inf"), plan()
    for _ in range(repeats):
        started = time.perf_counter()
        result = plan()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scheduler = build_scheduler(SchedulerConfig())
    config = RebalanceConfig()
    print(f"hosts={args.hosts} load average={os.getloadavg()[0]:.2f} (best of {args.repeats} rounds)")
    print("| VMs | moves | incremental round ms | ratio | rebuilt round ms | ratio |")
    print("|---|---|---|---|---|---|")
    first: tuple[float, float] | None = None
    for vms in args.vms:
        table, placed = skewed_cluster(args.hosts, vms)
        index = Placements(placed)

        def incremental(t: HostTable = table, i: Placements = index) -> RebalancePlan:
            return plan_balance(t, i, scheduler, ConcurrencyCaps(), config=config, last_moved_s={}, now_s=0.0)

        def rebuilt(t: HostTable = table, p: list[PlacedVM] = placed) -> RebalancePlan:
            return plan_balance(t, p, scheduler, ConcurrencyCaps(), config=config, last_moved_s={}, now_s=0.0)

        fast_s, plan = time_round(incremental, args.repeats)
        slow_s, same = time_round(rebuilt, args.repeats)
        assert plan == same, "the index must not change the plan"
        first = first or (fast_s, slow_s)
        print(f"| {vms:,} | {len(plan.moves)} | {1000 * fast_s:.1f} | {fast_s / first[0]:.2f} "
              f"| {1000 * slow_s:.1f} | {slow_s / first[1]:.2f} |", flush=True)
    print(f"load average after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
