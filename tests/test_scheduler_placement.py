"""The filter/score/select scheduler: invariants (Hypothesis) and each policy's intent."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from novacron.scheduler.config import SchedulerConfig, build_scheduler, hard_filters
from novacron.scheduler.policies import (
    Allocation,
    EnergyScore,
    NetworkScore,
    NumaLocality,
    NumaScore,
    Scorer,
    cross_node_ratio,
)
from novacron.scheduler.state import HostTable, PlacementRequest

DEFAULTS = SchedulerConfig()
HEADROOM = DEFAULTS.headroom()
FLAVOURS = [(1, 2.0, 0.1, 100.0), (2, 4.0, 0.2, 200.0), (4, 16.0, 0.5, 400.0), (8, 32.0, 1.0, 1000.0),
            (16, 64.0, 2.0, 2000.0)]


def random_table(seed: int, hosts: int) -> HostTable:
    rng = np.random.default_rng(seed)
    table = HostTable.uniform(hosts, cpu=64, memory_gib=256, network_gbps=10, iops=20000, hosts_per_rack=4)
    scale = rng.choice([0.5, 1.0, 2.0], size=hosts)
    table.capacity *= scale[None, :]
    table.numa_capacity *= scale[None, None, :]
    table.up = rng.random(hosts) > 0.1
    table.powered_on = rng.random(hosts) > 0.2
    return table


requests = st.lists(st.tuples(st.integers(0, len(FLAVOURS) - 1), st.integers(0, 3), st.integers(0, 3)),
                    min_size=1, max_size=60)


def make_request(n: int, flavour: int, anti: int, affinity: int, peers: tuple[int, ...] = ()) -> PlacementRequest:
    return PlacementRequest(vm_id=f"vm-{n}", demand=FLAVOURS[flavour],
                            anti_affinity_group=f"anti-{anti}" if anti else None,
                            affinity_group=f"aff-{affinity}" if affinity == 3 else None, peer_hosts=peers)


@given(seed=st.integers(0, 2**32 - 1), hosts=st.integers(1, 25), vms=requests,
       strategy=st.sampled_from(["spread", "pack"]), weight_energy=st.sampled_from([0.0, 1.0]),
       hosts_to_score=st.sampled_from([0, 1, 4]))
def test_placements_never_violate_capacity_headroom_anti_affinity_or_numa(
        seed: int, hosts: int, vms: list[tuple[int, int, int]], strategy: str, weight_energy: float,
        hosts_to_score: int) -> None:
    note(f"seed={seed}")
    table = random_table(seed, hosts)
    scheduler = build_scheduler(SchedulerConfig(strategy=strategy, weight_energy=weight_energy,  # type: ignore[arg-type]
                                                hosts_to_score=hosts_to_score))
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for n, (flavour, anti, affinity) in enumerate(vms):
        request = make_request(n, flavour, anti, affinity, tuple(members.get("all", [])[-2:]))
        decision = scheduler.place(table, request, rng)
        if not decision.placed:
            assert decision.rejected_by is not None
            continue
        row = decision.row
        assert row is not None and table.up[row]
        assert cross_node_ratio(table, request)[row] < DEFAULTS.max_cross_node_ratio
        table.allocate(row, request)
        members.setdefault("all", []).append(row)
        if request.anti_affinity_group:
            members.setdefault(request.anti_affinity_group, []).append(row)
        if request.affinity_group:
            members.setdefault(request.affinity_group, []).append(row)
        limit = table.capacity * (1 - np.asarray(HEADROOM))[:, None]
        assert np.all(table.allocated <= limit + 1e-6), "capacity or headroom exceeded"
        assert np.all(table.numa_allocated <= table.numa_capacity + 1e-6)
    for group, rows in members.items():
        if group.startswith("anti-"):
            assert len(rows) == len(set(rows)), f"anti-affinity group {group} shares a host"
        if group.startswith("aff-"):
            assert len(set(rows)) == 1, f"affinity group {group} is split"


ALL_FILTERS = hard_filters(DEFAULTS)
ALL_SCORERS: list[Scorer] = [Allocation("spread"), Allocation("pack"), NumaScore(), EnergyScore(), NetworkScore()]


@given(seed=st.integers(0, 2**32 - 1), hosts=st.integers(1, 20), vms=requests)
def test_filters_and_scorers_are_pure(seed: int, hosts: int, vms: list[tuple[int, int, int]]) -> None:
    table = random_table(seed, hosts)
    for n, (flavour, anti, affinity) in enumerate(vms[: len(vms) // 2]):
        row = n % hosts
        table.allocate(row, make_request(n, flavour, anti, affinity))
    request = make_request(999, *vms[-1], peers=(0, hosts - 1))
    before = copy.deepcopy(table)
    for policy in ALL_FILTERS:
        first = policy.feasible(table, request)
        assert np.array_equal(first, policy.feasible(table, request)), policy.name
        assert first.shape == (hosts,) and first.dtype == bool
    for scorer in ALL_SCORERS:
        first_score = scorer.score(table, request)
        assert np.array_equal(first_score, scorer.score(table, request)), scorer.name
        assert np.all((first_score >= 0) & (first_score <= 1)), scorer.name
    scheduler = build_scheduler(SchedulerConfig())
    a = scheduler.place(table, request, np.random.default_rng(seed))
    b = scheduler.place(table, request, np.random.default_rng(seed))
    assert a == b
    for name in ("capacity", "allocated", "numa_capacity", "numa_allocated", "rack", "up", "powered_on", "index"):
        assert np.array_equal(getattr(table, name), getattr(before, name)), f"{name} was mutated"
    assert table.groups == before.groups


def place_all(config: SchedulerConfig, table: HostTable, count: int, flavour: int = 1) -> list[int]:
    scheduler, rng, rows = build_scheduler(config), np.random.default_rng(1), []
    for n in range(count):
        request = make_request(n, flavour, 0, 0)
        decision = scheduler.place(table, request, rng)
        assert decision.row is not None
        table.allocate(decision.row, request)
        rows.append(decision.row)
    return rows


def test_spread_uses_every_host_and_pack_fills_one_first() -> None:
    spread = place_all(SchedulerConfig(strategy="spread", weight_network=0), HostTable.uniform(
        4, cpu=64, memory_gib=256, network_gbps=10, iops=20000), 8)
    assert sorted(np.bincount(spread, minlength=4)) == [2, 2, 2, 2]
    pack = place_all(SchedulerConfig(strategy="pack", weight_network=0), HostTable.uniform(
        4, cpu=64, memory_gib=256, network_gbps=10, iops=20000), 8)
    assert len(set(pack)) == 1


def test_energy_prefers_powered_on_hosts() -> None:
    table = HostTable.uniform(4, cpu=64, memory_gib=256, network_gbps=10, iops=20000)
    table.powered_on[:] = [False, False, True, False]
    rows = place_all(SchedulerConfig(strategy="spread", weight_energy=10.0, weight_network=0), table, 3)
    assert rows == [2, 2, 2]


def test_network_prefers_the_peers_host_then_their_rack() -> None:
    table = HostTable.uniform(8, cpu=64, memory_gib=256, network_gbps=10, iops=20000, hosts_per_rack=4)
    scores = NetworkScore().score(table, PlacementRequest(vm_id="v", demand=FLAVOURS[0], peer_hosts=(5, 5)))
    assert scores[5] == 1.0 and np.all(scores[[4, 6, 7]] == 0.5) and np.all(scores[:4] == 0.0)


def test_numa_filter_rejects_a_vm_that_would_straddle_nodes() -> None:
    table = HostTable.uniform(1, cpu=64, memory_gib=256, network_gbps=10, iops=20000, numa_nodes=2)
    big = PlacementRequest(vm_id="big", demand=(48, 100.0, 0.1, 10.0))  # 48 vCPUs > 32 per node
    assert cross_node_ratio(table, big)[0] == pytest.approx(1 / 3)
    assert not NumaLocality(0.2).feasible(table, big)[0]
    assert NumaLocality(0.4).feasible(table, big)[0]


def test_no_feasible_host_names_the_filter() -> None:
    table = HostTable.uniform(2, cpu=4, memory_gib=8, network_gbps=10, iops=20000)
    decision = build_scheduler(SchedulerConfig()).place(table, make_request(0, 4, 0, 0), np.random.default_rng(0))
    assert not decision.placed and decision.rejected_by == "resource_fit"


def test_a_window_scores_only_some_hosts_but_falls_back_to_all_when_it_has_none_feasible() -> None:
    table = HostTable.uniform(50, cpu=64, memory_gib=256, network_gbps=10, iops=20000)
    table.allocated[0, :49] = 64 * 0.8  # only the last host has CPU left
    scheduler = build_scheduler(SchedulerConfig(hosts_to_score=5))
    decision = scheduler.place(table, make_request(0, 0, 0, 0), np.random.default_rng(0))
    assert decision.row == 49
    table.allocated[0, :] = 0
    offsets = set()
    for n in range(20):
        evaluation = scheduler.evaluate(table, make_request(n, 0, 0, 0), np.random.default_rng(n))
        assert evaluation.combined.size == 5
        offsets.add(evaluation.offset)
    assert len(offsets) > 3, "the window moves with the generator"
