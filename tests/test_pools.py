"""Hierarchical resource pools: reservations hold under contention (Hypothesis), limits hold, the
division is work-conserving, admission keeps other pools' memory reservations, and a run with
pools passes its pool targets while the default run is untouched."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.cluster.contention import share_cpu
from novacron.cluster.pools import ROOT, Pool, PoolError, PoolTree, admit_memory, divide_cpu, pool_usage
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import loads_scenario, resolve_scenario
from sim.run import simulate

TOLERANCE = 1e-6


@st.composite
def contended_pools(draw: st.DrawFn) -> tuple[PoolTree, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An admissible pool tree, and VMs on a few hosts asking for (usually) more than the cores."""
    hosts = draw(st.integers(1, 3))
    capacity = np.array(draw(st.lists(st.floats(4.0, 64.0), min_size=hosts, max_size=hosts)))
    pools: list[Pool] = []
    room = {ROOT: float(capacity.sum())}
    for k in range(draw(st.integers(1, 6))):
        parent = draw(st.sampled_from([ROOT, *(p.name for p in pools)]))
        reservation = draw(st.floats(0.0, 1.0)) * room[parent]
        room[parent] -= reservation
        room[f"p{k}"] = reservation
        limit = draw(st.one_of(st.just(0.0), st.floats(reservation, reservation + 64.0)))
        pools.append(Pool(name=f"p{k}", parent=parent, cpu_reservation_cores=reservation, cpu_limit_cores=limit,
                          cpu_shares=draw(st.sampled_from([500.0, 1000.0, 2000.0, 4000.0]))))
    tree = PoolTree(tuple(pools), (), cluster_cores=float(capacity.sum()), cluster_memory_gib=1.0)
    vms = draw(st.integers(1, 24))
    demand = np.array(draw(st.lists(st.floats(0.0, 32.0), min_size=vms, max_size=vms)))
    vm_host = np.array(draw(st.lists(st.integers(0, hosts - 1), min_size=vms, max_size=vms)), dtype=np.int64)
    vm_leaf = np.array(draw(st.lists(st.integers(0, len(tree.leaves) - 1), min_size=vms, max_size=vms)),
                       dtype=np.int64)
    weights = np.array(draw(st.lists(st.sampled_from([1.0, 2.0, 4.0, 8.0]), min_size=vms, max_size=vms)))
    return tree, demand, vm_host, vm_leaf, weights, capacity


def per_host(tree: PoolTree, pool: str, values: np.ndarray, vm_host: np.ndarray, vm_leaf: np.ndarray,
             hosts: int) -> np.ndarray:
    under = np.isin(vm_leaf, [k for k, leaf in enumerate(tree.leaves) if pool in tree.path(leaf)])
    return np.bincount(vm_host[under], weights=values[under], minlength=hosts)


def wanted(tree: PoolTree, pool: str, demand: np.ndarray, vm_host: np.ndarray, vm_leaf: np.ndarray,
           fraction: np.ndarray) -> np.ndarray:
    """What a pool may ask for on each host: its children's asks (or its VMs' demand) within its limit."""
    kids = tree.children[pool]
    if kids:
        ask = sum(wanted(tree, kid, demand, vm_host, vm_leaf, fraction) for kid in kids)
    else:
        ask = per_host(tree, pool, demand, vm_host, vm_leaf, fraction.size)
    limit = tree.pools[pool].cpu_limit_cores
    return np.minimum(ask, limit * fraction) if limit > 0 else ask


@settings(max_examples=300, deadline=None)
@given(contended_pools())
def test_a_reservation_is_never_violated_under_contention(case: tuple) -> None:  # type: ignore[type-arg]
    tree, demand, vm_host, vm_leaf, weights, capacity = case
    served = divide_cpu(tree, demand, vm_host, vm_leaf, weights, capacity)
    hosts, fraction = capacity.size, capacity / capacity.sum()
    assert np.all(served >= -TOLERANCE) and np.all(served <= demand + TOLERANCE)
    assert np.all(np.bincount(vm_host, weights=served, minlength=hosts) <= capacity + TOLERANCE)
    for name, pool in tree.pools.items():
        got = per_host(tree, name, served, vm_host, vm_leaf, hosts)
        ask = wanted(tree, name, demand, vm_host, vm_leaf, fraction)
        assert np.all(got >= np.minimum(ask, pool.cpu_reservation_cores * fraction) - TOLERANCE), name
        if pool.cpu_limit_cores > 0:
            assert np.all(got <= pool.cpu_limit_cores * fraction + TOLERANCE), name
    # Work-conserving: a host whose pools ask for no more than its cores serves every ask.
    for h in range(hosts):
        asks = sum(wanted(tree, top, demand, vm_host, vm_leaf, fraction)[h] for top in tree.children[ROOT])
        if asks <= capacity[h]:
            assert served[vm_host == h].sum() == pytest.approx(asks, abs=1e-6)


def test_the_plain_contention_policies_do_break_a_reservation() -> None:
    """The checker can fail: sharing by vCPUs alone, as the 'shares' policy does, starves a reserved pool."""
    tree = PoolTree((Pool(name="gold", cpu_reservation_cores=8.0), Pool(name="bulk")), (),
                    cluster_cores=10.0, cluster_memory_gib=1.0)
    demand, vm_host = np.array([8.0, 32.0]), np.zeros(2, dtype=np.int64)
    vm_leaf, weights, capacity = np.array([0, 1]), np.array([1.0, 4.0]), np.array([10.0])
    for policy in ("proportional", "shares"):
        assert share_cpu(demand, vm_host, capacity, policy=policy, weights=weights)[0] < 8.0 - 1.0
    assert divide_cpu(tree, demand, vm_host, vm_leaf, weights, capacity)[0] == pytest.approx(8.0)
    usage = pool_usage(tree, demand, divide_cpu(tree, demand, vm_host, vm_leaf, weights, capacity), vm_host,
                       vm_leaf, capacity)
    assert usage["gold"] == pytest.approx((8.0, 8.0, 8.0))


def test_admission_keeps_other_pools_reserved_memory_and_limits() -> None:
    tree = PoolTree((Pool(name="prod", memory_reservation_gib=60.0), Pool(name="dev", memory_limit_gib=30.0)), (),
                    cluster_cores=10.0, cluster_memory_gib=100.0)
    assert admit_memory(tree, "dev", 30.0, {}, 100.0) is None
    assert "limit" in (admit_memory(tree, "dev", 31.0, {}, 100.0) or "")
    # 60 GiB kept for prod: dev may only take 40 of the 100, and is capped at 30 anyway.
    loose = PoolTree((Pool(name="prod", memory_reservation_gib=60.0), Pool(name="dev")), (),
                     cluster_cores=10.0, cluster_memory_gib=100.0)
    assert admit_memory(loose, "dev", 40.0, {}, 100.0) is None
    assert "reserved for other pools" in (admit_memory(loose, "dev", 41.0, {}, 100.0) or "")
    assert admit_memory(loose, "prod", 100.0, {}, 100.0) is None  # its own reservation and the rest


@pytest.mark.parametrize(("pools", "needle"), [
    ((Pool(name="a", cpu_reservation_cores=11.0),), "add up to 11"),
    ((Pool(name="a", cpu_reservation_cores=4.0), Pool(name="b", parent="a", cpu_reservation_cores=5.0)),
     "pool 'a''s children add up to 5"),
    ((Pool(name="a", cpu_reservation_cores=4.0, cpu_limit_cores=2.0),), "above its limit"),
    ((Pool(name="a", parent="b"), Pool(name="b", parent="a")), "cycle"),
    ((Pool(name="a", parent="nope"),), "is not a pool"),
])
def test_a_tree_that_cannot_keep_its_promises_is_refused(pools: tuple[Pool, ...], needle: str) -> None:
    with pytest.raises(PoolError, match=needle.replace("(", r"\(")):
        PoolTree(pools, (), cluster_cores=10.0, cluster_memory_gib=10.0)


def test_scenario_errors_are_one_line() -> None:
    text = "[cluster]\nhosts = 2\nhost_cpu_cores = 8\n[pools]\nenabled = true\nnames = ['a']\n"
    with pytest.raises(ConfigError, match=r"^s.toml: pools: the cpu reservations of the cluster's children"):
        loads_scenario(text + "cpu_reservation_cores = [17.0]\n", origin="s.toml")
    with pytest.raises(ConfigError, match=r"pools.cpu_shares has 2 values for 1 pools"):
        loads_scenario(text + "cpu_shares = [1.0, 2.0]\n", origin="s.toml")


def test_pools_run_holds_reservations_under_real_contention() -> None:
    scenario = resolve_scenario("pools", duration_s=1800.0)[0]
    metrics = compute_metrics(list(simulate(scenario, 3).log))
    assert metrics["pools.contended_samples"] > 0  # the run really was contended
    assert metrics["pools.reservation_shortfall_max_cores"] <= TOLERANCE
    assert metrics["pools.limit_excess_max_cores"] <= TOLERANCE
    assert metrics["pools.vms_rejected"] > 0  # dev's memory limit turned VMs away


def test_pools_are_off_by_default() -> None:
    scenario = resolve_scenario("default", duration_s=600.0)[0]
    assert not scenario.pools.enabled
    assert not any(name.startswith("pools.") for name in compute_metrics(list(simulate(scenario, 1).log)))
