"""The disaggregated memory pool: the allocator's ledger under random allocations and frees
(Hypothesis), where the fabric's figures come from, the pool-aware layout, memory-affinity
placement, and configurations that pass and fail the analysis' memory-pooling targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from novacron.cluster.events import MemoryPoolAllocated, MemoryPoolReleased, VMPlaced
from novacron.cluster.memory_pool import (
    DDR5_4800_CHANNEL_GB_S,
    AccessModel,
    MemoryFabric,
    MemoryPool,
    most_local_host,
    pcie_link_gb_s,
)
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, loads_scenario, resolve_scenario, scenario_targets
from novacron.slo import Verdict, evaluate
from sim.run import simulate
from tests.one_line_errors import one_line_error

EPS = 1e-6


def _pool(policy: str = "pool_aware", *, hosts: int = 4, local_gib: float = 64.0, pool_gib: float = 32.0,
          hosts_per_pool: int = 2) -> MemoryPool:
    return MemoryPool(hosts=hosts, numa_nodes=2, local_gib_per_host=local_gib, hosts_per_pool=hosts_per_pool,
                      pool_gib_per_group=pool_gib, fabric=MemoryFabric(), access=AccessModel(policy=policy))


class PoolLedger(RuleBasedStateMachine):
    """Random allocations and frees: capacity is never exceeded, shares are consistent with the
    layouts, and freeing gives back exactly what was taken."""

    @initialize(policy=st.sampled_from(["pool_aware", "uniform"]), hot=st.floats(0.05, 1.0),
                share=st.floats(0.0, 1.0), pool_gib=st.sampled_from([0.0, 8.0, 33.5]))
    def build(self, policy: str, hot: float, share: float, pool_gib: float) -> None:
        self.pool = MemoryPool(hosts=3, numa_nodes=2, local_gib_per_host=48.0, hosts_per_pool=2,
                               pool_gib_per_group=pool_gib, fabric=MemoryFabric(slice_gib=2.0),
                               access=AccessModel(policy=policy, hot_fraction=hot, hot_access_share=share))
        self.next_id = 0

    @rule(host=st.integers(0, 2), memory_gib=st.floats(0.125, 80.0))
    def allocate(self, host: int, memory_gib: float) -> None:
        before_nodes, before_slices = self.pool.node_used_gib.copy(), self.pool.group_used_slices.copy()
        vm_id = f"vm-{self.next_id}"
        self.next_id += 1
        planned = self.pool.plan(vm_id, host, memory_gib)
        got = self.pool.allocate(vm_id, host, memory_gib)
        assert got == planned
        if got is None:  # refused: nothing changed, and the pool really lacked the slices
            assert np.array_equal(self.pool.node_used_gib, before_nodes)
            assert np.array_equal(self.pool.group_used_slices, before_slices)
            return
        assert sum(got.node_gib) + got.pool_gib >= memory_gib - EPS
        assert got.pool_gib - (memory_gib - sum(got.node_gib)) < self.pool.fabric.slice_gib + EPS  # whole slices

    @precondition(lambda self: self.pool.allocations)
    @rule(pick=st.integers(0, 10_000))
    def release(self, pick: int) -> None:
        vm_id = sorted(self.pool.allocations)[pick % len(self.pool.allocations)]
        taken = self.pool.allocations[vm_id]
        nodes, slices = self.pool.node_used_gib.copy(), self.pool.group_used_slices.copy()
        assert self.pool.release(vm_id) == taken
        np.testing.assert_allclose(self.pool.node_used_gib[taken.host], nodes[taken.host] - taken.node_gib, atol=EPS)
        assert self.pool.group_used_slices[self.pool.group_of(taken.host)] == \
            slices[self.pool.group_of(taken.host)] - taken.slices
        assert self.pool.release(vm_id) is None

    @rule()
    def release_all(self) -> None:
        for vm_id in list(self.pool.allocations):
            self.pool.release(vm_id)
        assert np.allclose(self.pool.node_used_gib, 0.0, atol=EPS) and not self.pool.group_used_slices.any()

    @invariant()
    def never_beyond_capacity(self) -> None:
        pool = self.pool
        assert np.all(pool.node_used_gib <= pool.node_capacity_gib + EPS)
        assert np.all(pool.group_used_slices <= pool.group_capacity_slices)
        assert np.all(pool.node_used_gib >= -EPS) and np.all(pool.group_used_slices >= 0)

    @invariant()
    def ledger_matches_the_allocations(self) -> None:
        pool, live = self.pool, list(self.pool.allocations.values())
        nodes = np.zeros_like(pool.node_used_gib)
        slices = np.zeros_like(pool.group_used_slices)
        for a in live:
            nodes[a.host] += a.node_gib
            slices[pool.group_of(a.host)] += a.slices
        np.testing.assert_allclose(pool.node_used_gib, nodes, atol=1e-6)
        assert np.array_equal(pool.group_used_slices, slices)

    @invariant()
    def shares_are_consistent(self) -> None:
        live = list(self.pool.allocations.values())
        for a in live:
            assert all(-EPS <= s <= 1 + EPS for s in a.shares) and math.isclose(sum(a.shares), 1.0, abs_tol=1e-9)
            assert 0.0 <= a.locality_index <= 1.0 and 0.0 <= a.cross_node_share <= 1.0
            assert (a.pool_gib > 0) or a.cross_node_share <= EPS  # no pool memory, no pool access
            if self.pool.access.policy == "uniform":  # accesses follow where the memory landed
                assert a.locality_index == pytest.approx(a.node_gib[a.home_node] / a.memory_gib)
        snap = self.pool.snapshot()
        assert snap.vms == len(live)
        if live:
            weights = np.array([a.memory_gib for a in live])
            assert 0.0 <= snap.locality_index <= 1.0 and 0.0 <= snap.cross_node_share <= 1.0
            assert snap.locality_index == pytest.approx(np.average([a.locality_index for a in live], weights=weights))
            assert snap.cross_node_share == pytest.approx(np.average([a.cross_node_share for a in live],
                                                                     weights=weights))
        assert snap.group_excess_max_gib == 0.0


TestPoolLedger = PoolLedger.TestCase


def test_fabric_figures_come_from_the_standards() -> None:
    assert pytest.approx(38.4) == DDR5_4800_CHANNEL_GB_S  # 4800 MT/s x 8 bytes
    assert pcie_link_gb_s(32.0, 16) == pytest.approx(63.0, abs=0.02)  # PCIe 5.0 x16, 128b/130b
    fabric = MemoryFabric()
    assert fabric.bandwidths_gb_s() == pytest.approx((307.2, 96.0, 63.0), abs=0.02)
    assert fabric.latencies_ns() == (100.0, 160.0, 180.0)
    small = loads_scenario("[memory_pool]\nenabled = true\nhosts_per_pool = 8\n", origin="s").memory_pool
    large = loads_scenario("[memory_pool]\nenabled = true\nhosts_per_pool = 32\n", origin="s").memory_pool
    assert small.fabric().pool_extra_ns == 80.0 and large.fabric().pool_extra_ns == 180.0  # Pond: switch beyond 16


def test_the_pool_aware_layout_keeps_the_hot_half_local() -> None:
    aware, uniform = _pool("pool_aware", local_gib=32.0), _pool("uniform", local_gib=32.0)
    a, u = aware.allocate("vm", 0, 48.0), uniform.allocate("vm", 0, 48.0)
    assert a is not None and u is not None
    # 16 GiB on each NUMA node, 16 GiB in the pool either way; only where the accesses go differs:
    # the hot 24 GiB (95 % of accesses) fill the home node and half the other, the pool is cold.
    assert a.node_gib == u.node_gib == (16.0, 16.0) and a.pool_gib == u.pool_gib == 16.0
    assert a.shares == pytest.approx((0.95 * 16 / 24, 0.95 * 8 / 24 + 0.05 * 8 / 24, 0.05 * 16 / 24))
    assert u.shares == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert a.bandwidth_gb_s > u.bandwidth_gb_s and a.latency_ns < u.latency_ns
    assert a.manager_ms == pytest.approx(0.1 + 16 * 0.2) and a.host_ms == pytest.approx(32 * 0.05)


def test_affinity_picks_the_host_where_memory_is_local() -> None:
    pool = _pool()
    assert pool.allocate("big", 0, 60.0) is not None  # host 0's DRAM nearly full
    assert most_local_host(pool, [0, 1], 16.0, preferred=0) == 1
    assert most_local_host(pool, [0, 2], 4.0, preferred=0) == 0  # both fully local: the proposal wins the tie
    full = _pool(pool_gib=0.0, local_gib=8.0)
    assert most_local_host(full, [0, 1], 16.0, preferred=0) is None  # no pool: nowhere to spill


def _memory_pool() -> tuple[Scenario, str]:
    return resolve_scenario("memory-pool")


def _verdicts(scenario: Scenario, seed: int = 7) -> dict[str, Verdict]:
    metrics = compute_metrics(list(simulate(scenario, seed).log))
    targets, _ = scenario_targets(scenario)
    return {r.target.metric: r.verdict for r in evaluate(metrics, targets).results if r.counts}


def test_the_built_in_tb_scale_pool_passes_every_required_target() -> None:
    scenario, _ = _memory_pool()
    assert scenario.memory_pool.pool(scenario.cluster.hosts).pool_capacity_gib == 1024.0  # 1 TiB of pool
    verdicts = _verdicts(scenario)
    pool_targets = {m: v for m, v in verdicts.items() if m.startswith("memory_pool.")}
    assert len(pool_targets) == 5 and set(verdicts.values()) == {Verdict.PASS}, verdicts


def test_packing_without_memory_affinity_fails_locality_and_cross_node_access() -> None:
    text = _memory_pool()[1]
    text = text.replace('rebalance = "off"\n', 'rebalance = "off"\nstrategy = "pack"\n')
    packed = loads_scenario(text.replace("affinity = true", "affinity = false"), origin="m.toml")
    verdicts = _verdicts(packed)
    assert verdicts["memory_pool.locality_index"] is Verdict.FAIL
    assert verdicts["memory_pool.cross_node_pct"] is Verdict.FAIL
    # The same packing with the scheduler's memory affinity keeps memory local.
    with_affinity = _verdicts(loads_scenario(text, origin="m.toml"))
    assert with_affinity["memory_pool.locality_index"] is Verdict.PASS
    assert with_affinity["memory_pool.cross_node_pct"] is Verdict.PASS


def test_a_burst_of_large_vms_on_little_dram_queues_at_the_pool_manager() -> None:
    text = ("duration_s = 600.0\n[cluster]\nhosts = 8\nhost_cpu_cores = 64\nhost_memory_gib = 512.0\n"
            "[workload]\nvms = 40\nvm_cpu_cores = [8]\nvm_memory_gib = [64.0]\narrival_window_s = 0.0\n"
            "[scheduler]\nrebalance = \"off\"\n[migration]\nmigrations = 0\n[cache]\nenabled = false\n"
            "[raft]\nsimulate_s = 0.0\n"
            "[memory_pool]\nenabled = true\nlocal_gib_per_host = 32.0\nhosts_per_pool = 8\n"
            "pool_gib_per_group = 4096.0\n")
    events = list(simulate(loads_scenario(text, origin="burst.toml"), 1).log)
    allocated = [ev for ev in events if isinstance(ev, MemoryPoolAllocated)]
    assert len(allocated) == 40 and max(ev.wait_ms for ev in allocated) > 100.0  # 40 requests at once, one server
    metrics = compute_metrics(events)
    assert metrics["memory_pool.allocation_p99_ms"] > 10.0
    assert metrics["memory_pool.bandwidth_gb_s"] < 100.0 and metrics["memory_pool.cross_node_pct"] > 20.0
    assert metrics["memory_pool.capacity_excess_max_gib"] == 0.0


def test_a_pool_that_runs_out_turns_vms_away_and_never_overcommits() -> None:
    text = ("duration_s = 600.0\n[cluster]\nhosts = 4\nhost_cpu_cores = 64\nhost_memory_gib = 256.0\n"
            "[workload]\nvms = 20\nvm_cpu_cores = [4]\nvm_memory_gib = [48.0]\narrival_window_s = 60.0\n"
            "[scheduler]\nrebalance = \"off\"\n[migration]\nmigrations = 0\n[cache]\nenabled = false\n"
            "[raft]\nsimulate_s = 0.0\n"
            "[memory_pool]\nenabled = true\nlocal_gib_per_host = 32.0\nhosts_per_pool = 4\n"
            "pool_gib_per_group = 256.0\n")
    events = list(simulate(loads_scenario(text, origin="small.toml"), 1).log)
    metrics = compute_metrics(events)
    assert metrics["memory_pool.refused"] > 0 and metrics["memory_pool.capacity_excess_max_gib"] == 0.0
    placed = [ev for ev in events if isinstance(ev, VMPlaced)]
    pool_gib = sum(ev.pool_gib for ev in events if isinstance(ev, MemoryPoolAllocated))
    assert len(placed) < 20 and pool_gib <= 256.0


def test_memory_pool_is_off_by_default_and_errors_are_one_line() -> None:
    scenario = resolve_scenario("default", duration_s=600.0)[0]
    assert not scenario.memory_pool.enabled
    message = one_line_error(ConfigError, lambda: loads_scenario(
        "[cluster]\nhost_memory_gib = 64.0\n[memory_pool]\nenabled = true\nlocal_gib_per_host = 128.0\n", origin="s"))
    assert message.startswith("s: memory_pool.local_gib_per_host = 128 exceeds cluster.host_memory_gib = 64")
    message = one_line_error(ConfigError, lambda: loads_scenario("[memory_pool]\npolicy = \"nearest\"\n", origin="s"))
    assert "memory_pool.policy" in message and "pool_aware" in message


def test_memory_affinity_keeps_the_schedulers_anti_affinity() -> None:
    """Affinity may move a VM off the scheduler's choice, but only to a host the scheduler's filters
    pass: VMs of one app (groups of ``anti_affinity_group_size`` in request order) never share a host."""
    text = _memory_pool()[1].replace('rebalance = "off"\n', 'rebalance = "off"\nstrategy = "pack"\n')
    scenario = loads_scenario(text, origin="m.toml")
    group_size = scenario.scheduler.anti_affinity_group_size
    assert group_size > 1
    live: dict[str, str] = {}
    moved_off_choice = 0
    choice: dict[str, str] = {}
    for ev in simulate(scenario, 7).log:
        name = type(ev).__name__
        if name == "PlacementDecided":
            choice[ev.vm_id] = ev.host_id  # type: ignore[attr-defined]
        elif isinstance(ev, VMPlaced):
            app = int(ev.vm_id.removeprefix("vm-")) // group_size
            peers = {h for v, h in live.items() if int(v.removeprefix("vm-")) // group_size == app}
            assert ev.host_id not in peers, ev
            live[ev.vm_id] = ev.host_id
            moved_off_choice += choice.get(ev.vm_id) != ev.host_id
        elif name in ("VMStopped", "VMFailed"):
            live.pop(ev.vm_id, None)  # type: ignore[attr-defined]
    assert moved_off_choice > 0  # the affinity did override the packer


@given(hosts=st.integers(2, 6), hosts_per_pool=st.integers(1, 3), local_gib=st.sampled_from([16.0, 64.0]),
       pool_gib=st.sampled_from([0.0, 24.0, 200.0]), vms=st.integers(5, 60),
       window_s=st.sampled_from([0.0, 1800.0]), mtbf_h=st.sampled_from([0.3, 1000.0]),
       policy=st.sampled_from(["pool_aware", "uniform"]), affinity=st.booleans(), seed=st.integers(0, 2**32))
@settings(max_examples=25)  # each example is a one-hour run with faults
def test_a_run_never_overcommits_a_pool_and_frees_what_vms_give_back(
        hosts: int, hosts_per_pool: int, local_gib: float, pool_gib: float, vms: int, window_s: float,
        mtbf_h: float, policy: str, affinity: bool, seed: int) -> None:
    text = (f"duration_s = 3600.0\n[cluster]\nhosts = {hosts}\nhost_cpu_cores = 32\nhost_memory_gib = 256.0\n"
            f"[workload]\nvms = {vms}\nvm_cpu_cores = [2, 4]\nvm_memory_gib = [8.0, 48.0]\n"
            f"arrival_window_s = {window_s}\nlifetime_mean_s = 900.0\ndemand_update_s = 600.0\n"
            f"[faults]\nenabled = true\nhost_mtbf_h = {mtbf_h}\nhost_mttr_h = 0.2\nrestart_delay_s = 60.0\n"
            "[scheduler]\nrebalance = \"off\"\n[migration]\nmigrations = 0\n[cache]\nenabled = false\n"
            f"[memory_pool]\nenabled = true\nlocal_gib_per_host = {local_gib}\nhosts_per_pool = {hosts_per_pool}\n"
            f"pool_gib_per_group = {pool_gib}\npolicy = \"{policy}\"\naffinity = {str(affinity).lower()}\n"
            "sample_interval_s = 120.0\n")
    scenario = loads_scenario(text, origin="prop.toml")
    pool = scenario.memory_pool.pool(hosts)
    capacity_gib = pool.group_capacity_slices * pool.fabric.slice_gib
    held: dict[str, tuple[int, float]] = {}
    used = np.zeros(len(capacity_gib))
    placed: set[str] = set()
    for ev in simulate(scenario, seed).log:
        if isinstance(ev, MemoryPoolAllocated):
            group = pool.group_of(int(ev.host_id.removeprefix("host-")))
            assert ev.vm_id not in held and 0.0 <= ev.locality_index <= 1.0 and 0.0 <= ev.cross_node_share <= 1.0
            held[ev.vm_id] = group, ev.pool_gib
            used[group] += ev.pool_gib
            assert used[group] <= capacity_gib[group] + EPS and ev.pool_used_gib == pytest.approx(used[group])
        elif isinstance(ev, MemoryPoolReleased):
            group, gib = held.pop(ev.vm_id)
            used[group] -= gib
        elif isinstance(ev, VMPlaced):
            placed.add(ev.vm_id)
        elif type(ev).__name__ in ("VMStopped", "VMFailed"):
            placed.discard(ev.vm_id)  # type: ignore[attr-defined]
    assert set(held) <= placed  # what the pool holds belongs to VMs that still run
    assert used.sum() == pytest.approx(sum(gib for _, gib in held.values()))
