"""The decision cache: TTL, invalidation on host change, and never an infeasible placement."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st

from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.framework import Decision
from novacron.scheduler.state import HostTable, PlacementRequest

SHAPES = [(2, 8.0, 0.2, 200.0), (8, 32.0, 1.0, 800.0)]


def caching(ttl_s: float = 120.0, tolerance: float = 0.05) -> CachingScheduler:
    return CachingScheduler(build_scheduler(SchedulerConfig(strategy="pack")),
                            DecisionCache(ttl_s=ttl_s, tolerance=tolerance))


def table(hosts: int = 4) -> HostTable:
    return HostTable.uniform(hosts, cpu=64, memory_gib=256, network_gbps=10, iops=20000)


def place(sched: CachingScheduler, hosts: HostTable, vm_id: str, now_s: float) -> Decision:
    return sched.place(hosts, PlacementRequest(vm_id=vm_id, demand=SHAPES[0]), np.random.default_rng(0), now_s=now_s)


def test_hit_within_ttl_and_miss_after_it() -> None:
    hosts, sched, rng = table(), caching(), np.random.default_rng(0)
    request = PlacementRequest(vm_id="a", demand=SHAPES[0])
    first = sched.place(hosts, request, rng, now_s=0.0)
    assert not first.cached
    again = sched.place(hosts, PlacementRequest(vm_id="b", demand=SHAPES[0]), rng, now_s=119.0)
    assert again.cached and again.row == first.row
    late = sched.place(hosts, PlacementRequest(vm_id="c", demand=SHAPES[0]), rng, now_s=240.0)
    assert not late.cached and sched.cache.stats.expired == 1


def test_a_relied_on_host_changing_beyond_tolerance_invalidates() -> None:
    hosts, sched = table(), caching(tolerance=0.05)
    first = place(sched, hosts, "a", 0.0)
    assert first.row is not None
    hosts.allocate(first.row, PlacementRequest(vm_id="big", demand=(16, 64.0, 1.0, 1000.0)))  # 25 % of CPU
    second = place(sched, hosts, "b", 1.0)
    assert not second.cached and sched.cache.stats.invalidated == 1


def test_a_host_going_down_is_never_served() -> None:
    hosts, sched = table(), caching(tolerance=1.0)
    first = place(sched, hosts, "a", 0.0)
    assert first.row is not None
    hosts.up[first.row] = False
    second = place(sched, hosts, "b", 1.0)
    assert not second.cached and second.row != first.row


operations = st.lists(st.tuples(st.sampled_from(["place", "grow", "shrink", "down", "up", "anti", "aff", "tick"]),
                                st.integers(0, 7), st.integers(0, 1)), min_size=1, max_size=80)


@given(seed=st.integers(0, 2**32 - 1), ops=operations, tolerance=st.sampled_from([0.0, 0.05, 1.0]))
def test_cache_never_serves_an_infeasible_placement(seed: int, ops: list[tuple[str, int, int]],
                                                    tolerance: float) -> None:
    note(f"seed={seed}")
    hosts, rng = table(8), np.random.default_rng(seed)
    sched, now_s = caching(tolerance=tolerance), 0.0
    for n, (op, host, shape) in enumerate(ops):
        request = PlacementRequest(vm_id=f"vm-{n}", demand=SHAPES[shape],
                                   anti_affinity_group="g" if op == "anti" else None,
                                   affinity_group="a" if op == "aff" else None)
        if op in ("place", "anti", "aff"):
            decision = sched.place(hosts, request, rng, now_s)
            if decision.row is not None:
                mask, _ = sched.scheduler.feasible(hosts, request)
                assert mask[decision.row], f"served infeasible host {decision.row} (cached={decision.cached})"
                hosts.allocate(decision.row, request)
        elif op == "grow":
            hosts.allocated[:, host] += np.asarray(SHAPES[shape]) * 2
        elif op == "shrink":
            hosts.allocated[:, host] = np.maximum(hosts.allocated[:, host] - np.asarray(SHAPES[shape]), 0)
        elif op == "down":
            hosts.up[host] = False
        elif op == "up":
            hosts.up[host] = True
        else:
            now_s += 30.0
