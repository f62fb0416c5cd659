"""Scheduler benchmarks: placement latency, placements per second, hosts used vs the lower bound.

Run: PYTHONPATH=. /work/venv/bin/python -m pytest benchmarks/bench_scheduler.py --benchmark-enable \
  -p no:cacheprovider -o testpaths=benchmarks -o python_files='bench_*.py'

Targets: < 10 ms per placement at 1000 hosts with 5 policies (NovaCron analysis), aim < 1 ms;
placements per second at 5000 hosts against Kubernetes scheduler_perf's ~680-810 pods/s floor for
plain pods at 5000 nodes (aim 10x). The bin-packing group prints hosts used against the lower
bound for the scheduler (pack), online first fit and offline first-fit-decreasing in one run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from novacron.cluster.first_fit import first_fit
from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.framework import Scheduler, WeightedScorer
from novacron.scheduler.policies import Allocation, AntiAffinity, NetworkScore, NumaLocality, ResourceFit
from novacron.scheduler.quality import uniform_lower_bound
from novacron.scheduler.state import HostTable, PlacementRequest

FLAVOURS = [(1, 2.0, 0.1, 100.0), (2, 4.0, 0.2, 200.0), (4, 8.0, 0.4, 400.0), (8, 16.0, 0.8, 800.0),
            (16, 64.0, 1.6, 1600.0)]
HOST = {"cpu": 128.0, "memory_gib": 512.0, "network_gbps": 25.0, "iops": 50000.0}


def five_policies(hosts_to_score: int = 0) -> Scheduler:
    """Resource fit with headroom, anti-affinity, NUMA locality, spread, network-aware."""
    return Scheduler([ResourceFit(), AntiAffinity(), NumaLocality()],
                     [WeightedScorer(Allocation("spread"), 1.0), WeightedScorer(NetworkScore(), 0.5)],
                     hosts_to_score=hosts_to_score)


def half_full(hosts: int, seed: int = 1) -> HostTable:
    table = HostTable.uniform(hosts, **HOST)
    rng = np.random.default_rng(seed)
    fill = rng.uniform(0.1, 0.6, size=hosts)
    table.allocated = table.capacity * fill[None, :]
    table.numa_allocated = table.numa_capacity * fill[None, None, :]
    table.groups = {f"app-{g}": {int(r): 1 for r in np.flatnonzero(rng.random(hosts) < 0.01)} for g in range(50)}
    return table


def request(n: int, rng: np.random.Generator, hosts: int) -> PlacementRequest:
    return PlacementRequest(vm_id=f"vm-{n}", demand=FLAVOURS[int(rng.integers(len(FLAVOURS)))],
                            anti_affinity_group=f"app-{n % 50}", peer_hosts=(int(rng.integers(hosts)),))


@pytest.mark.parametrize("hosts", [100, 1000, 5000])
@pytest.mark.parametrize("policies", ["five", "default-nine"])
def test_placement_latency(benchmark: pytest.FixtureRequest, hosts: int, policies: str) -> None:
    benchmark.group = f"scheduler-latency-{policies}"
    scheduler = five_policies() if policies == "five" else build_scheduler(SchedulerConfig(weight_energy=0.5))
    table, rng = half_full(hosts), np.random.default_rng(2)
    reqs = [request(n, rng, hosts) for n in range(64)]
    counter = iter(range(10**9))
    decision = benchmark(lambda: scheduler.place(table, reqs[next(counter) % 64], rng))  # type: ignore[operator]
    assert decision.placed
    benchmark.extra_info.update(hosts=hosts, policy_count=scheduler.policy_count)  # type: ignore[attr-defined]
    if hosts == 1000 and policies == "five":
        check_policy_evaluation_target(benchmark)


def check_policy_evaluation_target(benchmark: pytest.FixtureRequest) -> None:
    """The catalogue's benchmark target (policy evaluation < 10 ms, 5 policies) on measured rounds (median).

    It lives here, not in a run's target table: in a run the decision time is a modelled constant
    that cannot fail, while here it is the wall-clock time of the real scheduler code.
    """
    from novacron.slo import BENCHMARK_TARGETS

    stats = getattr(benchmark, "stats", None)
    rounds_s = list(getattr(getattr(stats, "stats", None), "data", []) or [])
    if not rounds_s:  # --benchmark-disable: one untimed call, nothing to check
        return
    target = next(t for t in BENCHMARK_TARGETS if t.metric == "bench.scheduler.policy_eval_median_ms")
    median_ms = float(np.median(rounds_s)) * 1000.0
    benchmark.extra_info[target.metric] = median_ms  # type: ignore[attr-defined]
    assert target.comparator.holds(median_ms, target.threshold), \
        f"{target.name}: median {median_ms:.3g} ms, needs {target.describe_threshold()}"


def _place_many(place: Callable[[HostTable, PlacementRequest, int], int | None], hosts: int,
                vms: int) -> Callable[[], int]:
    def run() -> int:
        table, rng = HostTable.uniform(hosts, **HOST), np.random.default_rng(3)
        placed = 0
        for n in range(vms):
            req = request(n, rng, hosts)
            row = place(table, req, n)
            if row is not None:
                table.allocate(row, req)
                placed += 1
        return placed
    return run


def _placers() -> dict[str, Callable[[HostTable, PlacementRequest, int], int | None]]:
    scheduler, rng = five_policies(), np.random.default_rng(4)
    windowed = five_policies(hosts_to_score=500)  # k8s scores 10 % of nodes at 5000 nodes
    caching = CachingScheduler(build_scheduler(SchedulerConfig()), DecisionCache(ttl_s=120.0, tolerance=0.05))

    def baseline_first_fit(t: HostTable, r: PlacementRequest, n: int) -> int | None:
        free = t.capacity - t.allocated
        return first_fit(free[0], free[1], t.up, r.demand[0], r.demand[1])

    return {
        "five-policies": lambda t, r, n: scheduler.place(t, r, rng).row,
        "five-policies-window-500": lambda t, r, n: windowed.place(t, r, rng).row,
        "cached-default": lambda t, r, n: caching.place(t, r, rng, now_s=n * 0.01).row,
        "first-fit-baseline": baseline_first_fit,
    }


@pytest.mark.parametrize("placer", ["five-policies", "five-policies-window-500", "cached-default",
                                    "first-fit-baseline"])
def test_placements_per_second_at_5000_hosts(benchmark: pytest.FixtureRequest, placer: str) -> None:
    benchmark.group = "scheduler-throughput-5000-hosts"
    vms = 2000
    run = _place_many(_placers()[placer], 5000, vms)
    placed = benchmark.pedantic(run, rounds=3, iterations=1)  # type: ignore[attr-defined]
    assert placed == vms
    if placer != "first-fit-baseline":
        benchmark.extra_info["baseline"] = "test_placements_per_second_at_5000_hosts[first-fit-baseline]"  # type: ignore[attr-defined]
    mean_s = benchmark.stats.stats.mean  # type: ignore[attr-defined]
    benchmark.extra_info.update(vms=vms, placements_per_s=round(vms / mean_s))  # type: ignore[attr-defined]
    print(f"\n{placer}: {vms / mean_s:.0f} placements/s at 5000 hosts")


PACKING_FLAVOURS = [(32, 64.0, 1.0, 1000.0), (8, 160.0, 1.0, 1000.0), (24, 96.0, 2.0, 2000.0),
                    (16, 32.0, 0.5, 500.0), (4, 16.0, 0.2, 200.0)]
"""Large VMs (up to a third of a host) with CPU-heavy and memory-heavy shapes: a 2-D vector
packing instance where the order and the choice of host matter."""


def _bin_packing_workload(seed: int, vms: int) -> list[PlacementRequest]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(len(PACKING_FLAVOURS), size=vms)
    return [PlacementRequest(vm_id=f"vm-{n}", demand=PACKING_FLAVOURS[int(s)]) for n, s in enumerate(sizes)]


def _hosts_used(order: list[PlacementRequest], place: Callable[[HostTable, PlacementRequest], int | None],
                hosts: int) -> int:
    table = HostTable.uniform(hosts, **HOST)
    for req in order:
        row = place(table, req)
        assert row is not None, "the bin-packing instance must fit"
        table.allocate(row, req)
    return int((table.allocated.sum(axis=0) > 0).sum())


def test_hosts_used_against_lower_bound(benchmark: pytest.FixtureRequest) -> None:
    benchmark.group = "scheduler-bin-packing"
    hosts, workload = 600, _bin_packing_workload(5, 2000)
    headroom = np.array([0.2, 0.1, 0.3, 0.2])
    usable = np.array(list(HOST.values())) * (1 - headroom)
    bound = uniform_lower_bound(np.sum([r.demand for r in workload], axis=0), usable)
    pack, rng = build_scheduler(SchedulerConfig(strategy="pack", weight_numa=0.0, weight_network=0.0)), \
        np.random.default_rng(6)
    fit = ResourceFit()

    def first_fit_with_headroom(t: HostTable, r: PlacementRequest) -> int | None:
        rows = np.flatnonzero(fit.feasible(t, r))
        return int(rows[0]) if rows.size else None

    # Vector first-fit decreasing: largest first by the sum of normalised demands ("FFDSum",
    # Panigrahy et al., "Heuristics for Vector Bin Packing", Microsoft Research 2011).
    decreasing = sorted(workload, key=lambda r: -float(np.sum(np.asarray(r.demand) / usable)))
    used = {
        "scheduler-pack": benchmark.pedantic(lambda: _hosts_used(workload, lambda t, r: pack.place(t, r, rng).row,
                                                                 hosts), rounds=1, iterations=1),  # type: ignore[attr-defined]
        "first-fit": _hosts_used(workload, first_fit_with_headroom, hosts),
        "first-fit-decreasing": _hosts_used(decreasing, first_fit_with_headroom, hosts),
    }
    benchmark.extra_info.update(lower_bound=bound, **used)  # type: ignore[attr-defined]
    print(f"\nlower bound {bound} hosts; used: " + ", ".join(f"{k} {v} (+{100 * (v - bound) / bound:.1f} %)"
                                                            for k, v in used.items()))
    assert all(v >= bound for v in used.values())


def test_gap_to_cp_sat_optimum_on_small_instances(benchmark: pytest.FixtureRequest) -> None:
    """Hosts used by the online heuristics against the CP-SAT optimum (``opt`` extra)."""
    pytest.importorskip("ortools", reason="needs the 'opt' extra (ortools)")
    from novacron.scheduler.optimal import solve_min_hosts

    benchmark.group = "scheduler-gap-to-optimum"
    hosts, vms, seeds = 24, 40, range(5)
    usable = np.array(list(HOST.values()))[:, None] * (1 - np.array([0.2, 0.1, 0.3, 0.2]))[:, None] \
        * np.ones((1, hosts))
    pack, fit = build_scheduler(SchedulerConfig(strategy="pack", weight_numa=0.0, weight_network=0.0)), ResourceFit()

    def first_fit_with_headroom(t: HostTable, r: PlacementRequest) -> int | None:
        rows = np.flatnonzero(fit.feasible(t, r))
        return int(rows[0]) if rows.size else None

    totals = {"scheduler-pack": 0, "first-fit": 0, "first-fit-decreasing": 0, "cp-sat": 0}
    proven = 0
    for seed in seeds:
        workload, rng = _bin_packing_workload(100 + seed, vms), np.random.default_rng(seed)
        decreasing = sorted(workload, key=lambda r: -float(np.sum(np.asarray(r.demand) / usable[:, 0])))
        totals["scheduler-pack"] += _hosts_used(workload, lambda t, r, g=rng: pack.place(t, r, g).row, hosts)
        totals["first-fit"] += _hosts_used(workload, first_fit_with_headroom, hosts)
        totals["first-fit-decreasing"] += _hosts_used(decreasing, first_fit_with_headroom, hosts)
        best = benchmark.pedantic(lambda w=workload: solve_min_hosts(w, usable, deterministic_time_s=20.0),  # type: ignore[attr-defined, misc]
                                  rounds=1, iterations=1) if seed == 0 else \
            solve_min_hosts(workload, usable, deterministic_time_s=20.0)
        assert best is not None
        totals["cp-sat"] += best.hosts_used
        proven += best.proven_optimal
    gaps = {k: 100.0 * (v - totals["cp-sat"]) / totals["cp-sat"] for k, v in totals.items()}
    benchmark.extra_info.update(instances=len(seeds), vms=vms, proven_optimal=proven, **totals)  # type: ignore[attr-defined]
    print(f"\n{len(seeds)} instances of {vms} VMs, {proven} proven optimal; hosts used in all: "
          + ", ".join(f"{k} {totals[k]} (+{gaps[k]:.1f} %)" for k in totals))
    assert all(v >= totals["cp-sat"] for v in totals.values())


@pytest.mark.parametrize("mode", ["balance", "consolidate"])
def test_rebalance_plan_at_1000_hosts(benchmark: pytest.FixtureRequest, mode: str) -> None:
    """One rebalancing wave (up to 10 moves) over 1000 hosts and 15,000 VMs."""
    from novacron.scheduler.admission import ConcurrencyCaps
    from novacron.scheduler.rebalance import PlacedVM, RebalanceConfig, plan_balance, plan_consolidation

    benchmark.group = "scheduler-rebalance-1000-hosts"
    table, rng = HostTable.uniform(1000, **HOST), np.random.default_rng(7)
    placer = build_scheduler(SchedulerConfig(strategy="pack" if mode == "balance" else "spread",
                                             weight_numa=0.0, weight_network=0.0))
    placed = []
    for n in range(15_000):
        req = PlacementRequest(vm_id=f"vm-{n}", demand=FLAVOURS[int(rng.integers(4))],
                               anti_affinity_group=f"app-{n // 3}")
        decision = placer.place(table, req, rng)
        if decision.row is not None:
            placed.append(PlacedVM(req, decision.row, table.allocate(decision.row, req)))
    planner = plan_balance if mode == "balance" else plan_consolidation
    plan = benchmark.pedantic(lambda: planner(table, placed, placer, ConcurrencyCaps(), config=RebalanceConfig(),  # type: ignore[attr-defined]
                                              last_moved_s={}, now_s=0.0), rounds=3, iterations=1)
    benchmark.extra_info.update(vms=len(placed), moves=len(plan.moves), imbalance_before_pct=plan.imbalance_before_pct,  # type: ignore[attr-defined]
                                imbalance_after_pct=plan.imbalance_after_pct)
    print(f"\n{mode}: {len(plan.moves)} moves, imbalance {plan.imbalance_before_pct:.1f} -> "
          f"{plan.imbalance_after_pct:.1f} pp, {len(plan.hosts_to_power_off)} hosts to power off")
    assert plan.moves
