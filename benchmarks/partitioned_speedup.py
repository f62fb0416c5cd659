"""Speed-up of a federated run partitioned by datacenter on a Dask cluster of processes (issue 22).

    python benchmarks/partitioned_speedup.py [--scenario federation-8dc-large] [--duration 60] \\
        [--workers 1,2,4,8] [--seed 11]

Runs the scenario's federation once in this process (one partition: the baseline), then on a
fresh ``LocalCluster(processes=True)`` of W single-threaded workers with W partitions for every W,
then the baseline again (the load on a shared machine moves). Prints one markdown row per run:
the wall time of the windows (``PartitionedRun.wall_s``: not the setup, not the merge, both
printed apart) and its ratio to the first baseline, windows, the synchronisation overhead per window
(wall time less the slowest partition's simulation time in each window, averaged), queue events
simulated per second per worker against the baseline's, the CPU seconds of the workers and of
this process, the 1-minute load average at the start, and the merged log's hash (the same for
every row, or the script exits 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from novacron.scenario import resolve_scenario
from sim.federation.windows import PartitionedRun, run_partitioned


def worker_cpu_s(client: Any) -> float:
    times = client.run(lambda: sum(psutil.Process().cpu_times()[:2]))
    return float(sum(times.values()))


def measure(scenario: Any, seed: int, workers: int | None) -> tuple[PartitionedRun, float, float]:
    """(run, worker CPU s, this process's CPU s) for one layout (None: in this process); the CPU
    seconds cover setup, windows and merge."""
    me = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="partitioned-") as out:
        if workers is None:
            cpu0 = sum(me.cpu_times()[:2])
            run = run_partitioned(scenario, seed, Path(out), partitions=1)
            return run, 0.0, sum(me.cpu_times()[:2]) - cpu0
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            before = worker_cpu_s(client)
            cpu0 = sum(me.cpu_times()[:2])
            run = run_partitioned(scenario, seed, Path(out), partitions=workers, client=client)
            return run, worker_cpu_s(client) - before, sum(me.cpu_times()[:2]) - cpu0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="federation-8dc-large")
    parser.add_argument("--duration", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    scenario, _ = resolve_scenario(args.scenario, duration_s=args.duration)
    seed = scenario.seed if args.seed is None else args.seed
    layouts: list[int | None] = [None, *(int(w) for w in args.workers.split(",")), None]
    print(f"scenario {scenario.name}, seed {seed}, {args.duration:g} simulated s, {os.cpu_count()} cores\n")
    print("| layout | load avg (1 min) | setup s | windows wall s | wall / baseline | windows | "
          "sync overhead ms/window | simulated events/s per worker / baseline | worker CPU s | client CPU s | "
          "merge s | merged log sha256 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    base_wall = base_rate = 0.0
    hashes = set()
    for workers in layouts:
        load = os.getloadavg()[0]
        run, worker_cpu, client_cpu = measure(scenario, seed, workers)
        wall = run.wall_s
        rate = run.simulated / wall / (workers or 1)
        if not base_wall:
            base_wall, base_rate = wall, rate
        hashes.add(run.sha256)
        name = "in process, 1 partition" if workers is None else f"Dask, {workers} worker(s) x {workers} partition(s)"
        print(f"| {name} | {load:.1f} | {run.setup_s:.1f} | {wall:.1f} | {wall / base_wall:.2f} | {run.windows} | "
              f"{run.sync_overhead_ms_per_window:.2f} | {rate / base_rate:.3f} | {worker_cpu:.1f} | {client_cpu:.1f} | "
              f"{run.merge_s:.1f} | {run.sha256[:16]} |", flush=True)
    print(f"\nsimulated queue events per run: {run.simulated}; merged log events: {run.events}")
    if len(hashes) != 1:
        print(f"the layouts disagree: {sorted(hashes)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
