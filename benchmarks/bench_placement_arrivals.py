"""CPU per arriving VM in the placement core, at a built-in scenario's scheduler settings.

``novacron run scale-10000`` spends its first hour placing 500,000 VMs; this isolates the
scheduler's share of an arrival: the decision cache's lookup (and its feasibility re-check on a
hit), the filters and scorers over the scoring window, the selection, the cache store and the
table's allocation. Requests are made as ``SimScheduler.request_for`` makes them (the
scenario's flavours, anti-affinity groups of ``anti_affinity_group_size``, the app's earlier
hosts as peers); no VM leaves, no host fails, no Raft.

It prints the CPU seconds (``time.process_time``: not wall, so other jobs on the machine do not
count), the microseconds per VM and a SHA-256 of the chosen rows: a speed-up of the core must
leave the digest unchanged for the same ``--seed`` (the decisions are the same).

Run: ``.venv/bin/python -m benchmarks.bench_placement_arrivals scale-10000 --vms 40000``, and
the same command on the tree to compare against (``git worktree`` or ``git archive`` first on
``PYTHONPATH``) in the same session; results with the load average go in
``benchmarks/RESULTS_capacity.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np

from novacron.scenario import resolve_scenario
from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.state import HostTable, PlacementRequest


def place_arrivals(scenario: str, vms: int, seed: int) -> tuple[float, str, int]:
    """Place ``vms`` arrivals; (CPU seconds, digest of the rows chosen, decision-cache hits)."""
    resolved, _ = resolve_scenario(scenario)
    cfg, c, w = resolved.scheduler, resolved.cluster, resolved.workload
    table = HostTable.uniform(c.hosts, cpu=c.host_cpu_cores * c.cpu_overcommit, memory_gib=c.host_memory_gib,
                              network_gbps=c.host_network_gbps, iops=c.host_disk_iops, numa_nodes=cfg.numa_nodes,
                              hosts_per_rack=c.hosts_per_rack)
    scheduler = CachingScheduler(build_scheduler(cfg), DecisionCache(
        ttl_s=cfg.decision_cache_ttl_s, tolerance=cfg.cache_tolerance_pct / 100))
    tiebreak = np.random.default_rng(seed)
    flavours = np.random.default_rng(seed + 1).integers(len(w.vm_cpu_cores), size=vms)
    spacing_s = w.arrival_window_s / max(w.vms, 1)
    app_rows: dict[int, list[int]] = {}
    rows: list[int] = []
    started = time.process_time()
    for n, flavour in enumerate(flavours.tolist()):
        request, app = _request(cfg, n, w.vm_cpu_cores[flavour], w.vm_memory_gib[flavour], app_rows)
        decision = scheduler.place(table, request, tiebreak, n * spacing_s)
        rows.append(-1 if decision.row is None else decision.row)
        if decision.row is not None:
            table.allocate(decision.row, request)
            app_rows.setdefault(app, []).append(decision.row)
    cpu_s = time.process_time() - started
    digest = hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()
    return cpu_s, digest, scheduler.cache.stats.hits


def _request(cfg: SchedulerConfig, n: int, cpu: int, memory_gib: float,
             app_rows: dict[int, list[int]]) -> tuple[PlacementRequest, int]:
    app = n // cfg.anti_affinity_group_size if cfg.anti_affinity_group_size else n
    peers = tuple(app_rows.get(app, [])[-cfg.peers_per_vm:]) if cfg.peers_per_vm else ()
    demand = (float(cpu), memory_gib, cpu * cfg.vm_network_gbps_per_vcpu, cpu * cfg.vm_iops_per_vcpu)
    group = f"app-{app}" if cfg.anti_affinity_group_size > 1 else None
    return PlacementRequest(vm_id=f"vm-{n}", demand=demand, anti_affinity_group=group, peer_hosts=peers), app


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="scale-10000")
    parser.add_argument("--vms", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cpu_s, digest, hits = place_arrivals(args.scenario, args.vms, args.seed)
    print(f"{args.scenario}: {args.vms} arrivals, {cpu_s:.2f} CPU s, {cpu_s / args.vms * 1e6:.0f} us/VM, "
          f"{hits} cache hits, rows sha256 {digest[:16]}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
