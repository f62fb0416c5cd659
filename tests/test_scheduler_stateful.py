"""A Hypothesis state machine over the whole scheduler: place (through the cache), remove, fail
hosts, advance time, rebalance and consolidate; after every step the invariants must hold."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from novacron.scheduler.admission import ConcurrencyCaps
from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.rebalance import PlacedVM, RebalanceConfig, imbalance_pct, plan_balance, plan_consolidation
from novacron.scheduler.state import HostTable, PlacementRequest

HEADROOM = np.array([0.20, 0.10, 0.30, 0.20])
SHAPES = [(2, 4.0, 0.2, 200.0), (4, 16.0, 0.4, 400.0), (8, 48.0, 1.0, 1000.0), (16, 64.0, 2.0, 1500.0)]


class SchedulerMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**32 - 1), hosts=st.integers(2, 12), strategy=st.sampled_from(["spread", "pack"]))
    def start(self, seed: int, hosts: int, strategy: str) -> None:
        self.table = HostTable.uniform(hosts, cpu=64, memory_gib=256, network_gbps=10, iops=20000, hosts_per_rack=3)
        self.config = SchedulerConfig(strategy=strategy)  # type: ignore[arg-type]
        self.scheduler = CachingScheduler(build_scheduler(self.config), DecisionCache(ttl_s=120.0, tolerance=0.05))
        self.rng = np.random.default_rng(seed)
        self.vms: dict[str, PlacedVM] = {}
        self.now_s, self.count = 0.0, 0
        self.last_moved_s: dict[str, float] = {}

    @rule(shape=st.integers(0, len(SHAPES) - 1), group=st.integers(0, 3))
    def place(self, shape: int, group: int) -> None:
        self.count += 1
        request = PlacementRequest(vm_id=f"vm-{self.count}", demand=SHAPES[shape],
                                   anti_affinity_group=f"g{group}" if group else None)
        decision = self.scheduler.place(self.table, request, self.rng, self.now_s)
        if decision.row is not None:
            assert self.table.up[decision.row]
            self.vms[request.vm_id] = PlacedVM(request, decision.row, self.table.allocate(decision.row, request))

    @precondition(lambda self: bool(self.vms))
    @rule(pick=st.integers(0, 10**6))
    def remove(self, pick: int) -> None:
        vm = self.vms.pop(sorted(self.vms)[pick % len(self.vms)])
        self.table.release(vm.row, vm.request, vm.numa_split)

    @rule(host=st.integers(0, 11), up=st.booleans())
    def host_state(self, host: int, up: bool) -> None:
        if host < self.table.size and not any(v.row == host for v in self.vms.values()):
            self.table.up[host] = up  # only empty hosts fail here: evacuation is not this test's subject

    @rule(seconds=st.sampled_from([10.0, 60.0, 600.0]))
    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    @rule(consolidate=st.booleans())
    def rebalance(self, consolidate: bool) -> None:
        planner = plan_consolidation if consolidate else plan_balance
        before = imbalance_pct(self.table)
        plan = planner(self.table, list(self.vms.values()), self.scheduler.scheduler, ConcurrencyCaps(),
                       config=RebalanceConfig(ping_pong_window_s=300.0), last_moved_s=self.last_moved_s,
                       now_s=self.now_s)
        rows = {h: i for i, h in enumerate(self.table.host_ids)}
        for move in plan.moves:
            assert self.now_s - self.last_moved_s.get(move.vm_id, -1e9) >= 300.0, "ping-pong"
            vm = self.vms[move.vm_id]
            self.table.release(vm.row, vm.request, vm.numa_split)
            destination = rows[move.destination_host_id]
            self.vms[move.vm_id] = PlacedVM(vm.request, destination, self.table.allocate(destination, vm.request))
            self.last_moved_s[move.vm_id] = self.now_s
        if not consolidate:
            assert imbalance_pct(self.table) <= before + 1e-9

    @invariant()
    def allocations_are_the_sum_of_placed_vms(self) -> None:
        expected = np.zeros_like(self.table.allocated)
        for vm in self.vms.values():
            expected[:, vm.row] += vm.request.demand
        assert np.allclose(self.table.allocated, expected, atol=1e-6)

    @invariant()
    def headroom_and_anti_affinity_hold(self) -> None:
        assert np.all(self.table.allocated <= self.table.capacity * (1 - HEADROOM)[:, None] + 1e-6)
        seen: set[tuple[str, int]] = set()
        for vm in self.vms.values():
            group = vm.request.anti_affinity_group
            if group is not None:
                assert (group, vm.row) not in seen, f"{group} twice on row {vm.row}"
                seen.add((group, vm.row))


SchedulerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
test_scheduler_state_machine = SchedulerMachine.TestCase
