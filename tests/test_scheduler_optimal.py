"""The CP-SAT optimum (``opt`` extra): feasible, never worse than the heuristics, above the bound."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.optimal import solve_min_hosts
from novacron.scheduler.quality import hosts_lower_bound
from novacron.scheduler.state import HostTable, PlacementRequest

pytest.importorskip("ortools", reason="the optimiser needs the 'opt' extra (ortools)")

HEADROOM = (0.2, 0.1, 0.3, 0.2)
SHAPES = [(24, 40.0, 1.0, 1000.0), (8, 150.0, 1.0, 1000.0), (16, 96.0, 2.0, 2000.0), (4, 16.0, 0.2, 200.0)]


def instance(seed: int, vms: int) -> list[PlacementRequest]:
    rng = np.random.default_rng(seed)
    return [PlacementRequest(vm_id=f"vm-{n}", demand=SHAPES[int(rng.integers(len(SHAPES)))],
                             anti_affinity_group=f"g{n % 3}" if n % 4 == 0 else None) for n in range(vms)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_optimum_is_feasible_and_no_worse_than_online_pack(seed: int) -> None:
    requests = instance(seed, 18)
    table = HostTable.uniform(10, cpu=64, memory_gib=256, network_gbps=10, iops=20000)
    usable = table.capacity * (1 - np.asarray(HEADROOM))[:, None]
    best = solve_min_hosts(requests, usable, deterministic_time_s=5.0)
    assert best is not None
    for row in set(best.rows):
        on_host = [r for r, h in zip(requests, best.rows, strict=True) if h == row]
        assert np.all(np.sum([r.demand for r in on_host], axis=0) <= usable[:, row] + 1e-9)
        groups = [r.anti_affinity_group for r in on_host if r.anti_affinity_group]
        assert len(groups) == len(set(groups))
    assert best.hosts_used == len(set(best.rows)) >= best.best_bound
    total = np.sum([r.demand for r in requests], axis=0)
    assert best.best_bound >= hosts_lower_bound(total, usable) or not best.proven_optimal
    pack, rng = build_scheduler(SchedulerConfig(strategy="pack", weight_numa=0, weight_network=0)), \
        np.random.default_rng(seed)
    for req in requests:
        decision = pack.place(table, req, rng)
        assert decision.row is not None
        table.allocate(decision.row, req)
    assert best.hosts_used <= int((table.allocated.sum(axis=0) > 0).sum())
