"""The rebalancer: caps, headroom, ping-pong, imbalance never raised, consolidation empties hosts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st

from novacron.migration.admission import AdmissionController, AdmissionPolicy, HostLoad, MigrationCost
from novacron.migration.move_admission import RebalancerAdmission
from novacron.scheduler.admission import ConcurrencyCaps, Move
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.framework import Scheduler
from novacron.scheduler.policies import Filter
from novacron.scheduler.rebalance import (
    PlacedVM,
    Placements,
    RebalanceConfig,
    RebalancePlan,
    imbalance_pct,
    plan_balance,
    plan_consolidation,
)
from novacron.scheduler.state import BoolArray, HostTable, PlacementRequest

HEADROOM = np.array([0.20, 0.10, 0.30, 0.20])
FLAVOURS = [(1, 2.0, 0.1, 100.0), (2, 8.0, 0.2, 200.0), (4, 16.0, 0.5, 400.0), (8, 32.0, 1.0, 1000.0)]


def skewed_cluster(seed: int, hosts: int, vms: int) -> tuple[HostTable, list[PlacedVM]]:
    """VMs crowded onto the first hosts: a packed, unbalanced cluster that respects headroom."""
    rng = np.random.default_rng(seed)
    table = HostTable.uniform(hosts, cpu=64, memory_gib=256, network_gbps=10, iops=20000, hosts_per_rack=4)
    pack = build_scheduler(SchedulerConfig(strategy="pack", weight_numa=0, weight_network=0))
    placed = []
    for n in range(vms):
        flavour = FLAVOURS[int(rng.integers(len(FLAVOURS)))]
        anti = f"g{int(rng.integers(4))}" if rng.random() < 0.3 else None
        request = PlacementRequest(vm_id=f"vm-{n}", demand=flavour, anti_affinity_group=anti)
        decision = pack.place(table, request, rng)
        if decision.row is not None:
            placed.append(PlacedVM(request, decision.row, table.allocate(decision.row, request)))
    return table, placed


def apply_plan(table: HostTable, vms: list[PlacedVM], plan: RebalancePlan) -> HostTable:
    after, by_id = table.copy(), {v.request.vm_id: v for v in vms}
    rows = {h: i for i, h in enumerate(table.host_ids)}
    for move in plan.moves:
        vm = by_id[move.vm_id]
        assert table.host_ids[vm.row] == move.source_host_id
        after.release(vm.row, vm.request, vm.numa_split)
        after.allocate(rows[move.destination_host_id], vm.request)
    return after


def check_caps_and_constraints(table: HostTable, plan: RebalancePlan, config: RebalanceConfig) -> HostTable:
    per_host = Counter(h for m in plan.moves for h in (m.source_host_id, m.destination_host_id))
    assert len(plan.moves) <= config.max_moves_total
    assert all(count <= config.max_moves_per_host for count in per_host.values()), per_host
    assert len({m.vm_id for m in plan.moves}) == len(plan.moves), "a VM moved twice in one plan"
    return table


@given(seed=st.integers(0, 2**32 - 1), hosts=st.integers(2, 12), vms=st.integers(1, 80),
       per_host=st.integers(1, 3), total=st.integers(1, 12))
def test_balance_respects_caps_headroom_and_never_raises_imbalance(
        seed: int, hosts: int, vms: int, per_host: int, total: int) -> None:
    note(f"seed={seed}")
    table, placed = skewed_cluster(seed, hosts, vms)
    config = RebalanceConfig(imbalance_threshold_pct=1.0, max_moves_per_host=per_host, max_moves_total=total)
    before = table.copy()
    plan = plan_balance(table, placed, build_scheduler(SchedulerConfig()), ConcurrencyCaps(
        max_per_host=per_host, max_total=total), config=config, last_moved_s={}, now_s=0.0)
    assert np.array_equal(table.allocated, before.allocated), "the input table was mutated"
    check_caps_and_constraints(table, plan, config)
    after = apply_plan(table, placed, plan)
    assert imbalance_pct(after) <= imbalance_pct(table) + 1e-9
    assert plan.imbalance_after_pct == imbalance_pct(after)
    assert np.all(after.allocated <= after.capacity * (1 - HEADROOM)[:, None] + 1e-6)
    for group, members in after.groups.items():
        if group.startswith("g"):
            assert max(members.values(), default=0) <= 1, f"anti-affinity group {group} shares a host"


def test_balance_spreads_a_skewed_cluster_and_stops_below_threshold() -> None:
    table, placed = skewed_cluster(3, 6, 30)
    config = RebalanceConfig(imbalance_threshold_pct=5.0, max_moves_per_host=10, max_moves_total=100)
    plan = plan_balance(table, placed, build_scheduler(SchedulerConfig()), ConcurrencyCaps(
        max_per_host=10, max_total=100), config=config, last_moved_s={}, now_s=0.0)
    assert imbalance_pct(table) > 20 and plan.moves
    assert plan.imbalance_after_pct < 5.0 or len(plan.moves) == 100


def test_recently_moved_vms_stay_put() -> None:
    table, placed = skewed_cluster(3, 6, 30)
    recently = {v.request.vm_id: 100.0 for v in placed}
    plan = plan_balance(table, placed, build_scheduler(SchedulerConfig()), ConcurrencyCaps(),
                        config=RebalanceConfig(ping_pong_window_s=600.0), last_moved_s=recently, now_s=500.0)
    assert plan.moves == ()
    later = plan_balance(table, placed, build_scheduler(SchedulerConfig()), ConcurrencyCaps(),
                         config=RebalanceConfig(ping_pong_window_s=600.0), last_moved_s=recently, now_s=800.0)
    assert later.moves


def test_admission_in_flight_migrations_count_against_the_caps() -> None:
    table, placed = skewed_cluster(3, 6, 30)
    caps = ConcurrencyCaps(max_per_host=2, max_total=10)
    for n in range(9):
        caps.started(Move(f"elsewhere-{n}", f"x{n}", f"y{n}"))
    plan = plan_balance(table, placed, build_scheduler(SchedulerConfig()), caps, config=RebalanceConfig(),
                        last_moved_s={}, now_s=0.0)
    assert len(plan.moves) == 1


@given(seed=st.integers(0, 2**32 - 1), hosts=st.integers(2, 10), vms=st.integers(1, 40))
def test_consolidation_respects_caps_and_empties_whole_hosts(seed: int, hosts: int, vms: int) -> None:
    note(f"seed={seed}")
    rng = np.random.default_rng(seed)
    table = HostTable.uniform(hosts, cpu=64, memory_gib=256, network_gbps=10, iops=20000)
    spread = build_scheduler(SchedulerConfig(strategy="spread"))
    placed = []
    for n in range(vms):
        request = PlacementRequest(vm_id=f"vm-{n}", demand=FLAVOURS[int(rng.integers(len(FLAVOURS)))])
        decision = spread.place(table, request, rng)
        if decision.row is not None:
            placed.append(PlacedVM(request, decision.row, table.allocate(decision.row, request)))
    config = RebalanceConfig(max_moves_per_host=30, max_moves_total=30)
    plan = plan_consolidation(table, placed, spread, ConcurrencyCaps(max_per_host=30, max_total=30),
                              config=config, last_moved_s={}, now_s=0.0)
    check_caps_and_constraints(table, plan, config)
    after = apply_plan(table, placed, plan)
    assert np.all(after.allocated <= after.capacity * (1 - HEADROOM)[:, None] + 1e-6)
    for host_id in plan.hosts_to_power_off:
        assert np.allclose(after.allocated[:, table.host_ids.index(host_id)], 0.0, atol=1e-9), host_id
    assert len(plan.hosts_to_power_off) < hosts
    if 1 < len(placed) <= 4 and hosts > 1:
        assert plan.hosts_to_power_off, "a lightly loaded cluster frees at least one host"


def test_the_migration_admission_counts_planned_moves_against_caps_and_headroom() -> None:
    controller = AdmissionController(AdmissionPolicy(max_per_host=2, max_global=3, rate_per_s=1.0, burst=10))
    controller.update_host("d", HostLoad(memory_pct=50.0))
    cost = MigrationCost(source=HostLoad(network_pct=20.0), destination=HostLoad(memory_pct=15.0, network_pct=20.0))
    admission = RebalancerAdmission(controller, lambda move: cost, lambda: 0.0)
    first, second = Move("a", "s1", "d"), Move("b", "s2", "d")
    assert admission.may_start(first, ())
    # 50 % memory + two VMs of 15 % = 80 %, under the 90 % ceiling; a third would reach 95 %.
    assert admission.may_start(second, (first,))
    assert not admission.may_start(Move("c", "s3", "d"), (first, second)), "2 per host and memory headroom"
    assert not admission.may_start(Move("a", "s9", "x"), (first,)), "the same VM twice"
    assert not admission.may_start(Move("e", "s4", "x"), (first, second, Move("c", "s5", "y"))), "3 in all"
    admission.started(first)
    assert not admission.may_start(Move("a", "s1", "y"), ()), "already migrating"
    admission.finished("a")
    assert admission.may_start(Move("a", "s1", "y"), ())


def test_balance_plans_through_the_migration_admission_controller() -> None:
    table, placed = skewed_cluster(3, 6, 30)
    controller = AdmissionController(AdmissionPolicy())
    cost = MigrationCost(source=HostLoad(cpu_pct=1.0, network_pct=30.0),
                         destination=HostLoad(cpu_pct=1.0, memory_pct=5.0, network_pct=30.0))
    config = RebalanceConfig(max_moves_per_host=2, max_moves_total=10)
    admission = RebalancerAdmission(controller, lambda m: cost, lambda: 0.0)
    plan = plan_balance(table, placed, build_scheduler(SchedulerConfig()), admission, config=config,
                        last_moved_s={}, now_s=0.0)
    assert plan.moves and plan.imbalance_after_pct < plan.imbalance_before_pct
    check_caps_and_constraints(table, plan, config)
    network = Counter(h for m in plan.moves for h in (m.source_host_id, m.destination_host_id))
    assert max(network.values()) * 30.0 <= 70.0, "network headroom with the planned streams"


@dataclass(frozen=True, slots=True)
class Opaque:
    """A filter the rebalancer cannot see through: forces its VM-by-VM reference path."""

    inner: Filter
    name: str = "opaque"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        return self.inner.feasible(hosts, request)


@given(seed=st.integers(0, 2**32 - 1), hosts=st.integers(2, 12), vms=st.integers(1, 80),
       in_flight=st.integers(0, 5), moved=st.integers(0, 5))
def test_balance_by_vm_shape_equals_the_vm_by_vm_reference(
        seed: int, hosts: int, vms: int, in_flight: int, moved: int) -> None:
    """The per-(row, demand) evaluation with anti-affinity struck out per VM must pick exactly
    the moves the VM-by-VM evaluation picks, in the same order."""
    note(f"seed={seed}")
    table, placed = skewed_cluster(seed, hosts, vms)
    scheduler = build_scheduler(SchedulerConfig())
    reference = Scheduler([Opaque(f) for f in scheduler.filters], [])
    excluded = {v.request.vm_id for v in placed[:in_flight]}
    last_moved_s = {v.request.vm_id: 50.0 for v in placed[-moved:]} if moved else {}
    config = RebalanceConfig(imbalance_threshold_pct=1.0, max_moves_per_host=3, max_moves_total=12,
                             ping_pong_window_s=100.0)
    plans = [plan_balance(table, Placements(placed), s, ConcurrencyCaps(max_per_host=3, max_total=12),
                          config=config, last_moved_s=last_moved_s, now_s=100.0, excluded=excluded)
             for s in (scheduler, reference)]
    assert plans[0] == plans[1]
    assert not {m.vm_id for m in plans[0].moves} & excluded


def test_only_filters_that_declare_they_read_demand_and_groups_get_the_per_shape_path() -> None:
    """The shape property above compares the two paths only if the built-in filters take the per-shape
    one and an undeclared filter does not (a filter opts in by deriving from ``ReadsDemandAndGroupsOnly``)."""
    from novacron.scheduler.rebalance import _class_filters_only

    scheduler = build_scheduler(SchedulerConfig())
    assert _class_filters_only(scheduler)
    assert not _class_filters_only(Scheduler([*scheduler.filters, Opaque(scheduler.filters[0])], []))


def test_a_what_if_puts_every_row_and_group_back_bit_for_bit() -> None:
    table, placed = skewed_cluster(5, 6, 40)
    before = table.copy()
    with table.what_if():
        for vm in placed[:10]:
            table.release(vm.row, vm.request, vm.numa_split)
            table.allocate((vm.row + 1) % table.size, vm.request)
        table.allocate(0, PlacementRequest(vm_id="new", demand=FLAVOURS[0], anti_affinity_group="fresh"))
        assert not np.array_equal(table.allocated, before.allocated)
    assert np.array_equal(table.allocated, before.allocated)
    assert np.array_equal(table.numa_allocated, before.numa_allocated)
    assert table.groups == before.groups and table.undo_log is None


def test_placements_index_follows_moves_and_departures() -> None:
    _, placed = skewed_cluster(5, 6, 40)
    index = Placements(placed)
    vm = placed[0]
    index.put(PlacedVM(vm.request, vm.row + 1, vm.numa_split))
    assert vm.request.vm_id in index.ids_on(vm.row + 1) and vm.request.vm_id not in index.ids_on(vm.row)
    index.pop(vm.request.vm_id)
    assert vm.request.vm_id not in index.ids_on(vm.row + 1) and len(index) == len(placed) - 1
    assert all(index.ids_on(r) == sorted(index.ids_on(r)) for r in index.rows())


def test_placements_by_demand_partition_each_row_as_vms_come_move_and_go() -> None:
    """The per-(row, demand) lists a balancing step walks hold exactly the row's VMs, sorted."""
    _, placed = skewed_cluster(7, 6, 60)
    index = Placements(placed)
    for vm in placed[:20:3]:
        index.put(PlacedVM(vm.request, (vm.row + 2) % 6, vm.numa_split))
    for vm in placed[1:20:4]:
        index.pop(vm.request.vm_id)
    for row in range(6):
        classes = index.shapes_on(row)
        assert all(ids == sorted(ids) and ids for ids in classes)
        assert sorted(v for ids in classes for v in ids) == index.ids_on(row)
        assert all(len({index[v].request.demand for v in ids}) == 1 for ids in classes)
