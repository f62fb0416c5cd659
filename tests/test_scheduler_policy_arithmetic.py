"""The vectorised policies compute, bit for bit, the per-host formulas they document.

Placement decisions must not move when a policy is rewritten for speed (the golden runs pin
them), so each rewrite keeps the per-element arithmetic and its order. These tests hold the
numpy versions to plain per-host Python references of the same formulas, with exact equality:
a reordered sum or a clip taken at another step changes the last bits and fails here before it
moves a placement in a long run.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st

from novacron.scheduler.policies import EPS, Allocation, ResourceFit, cross_node_ratio
from novacron.scheduler.state import CPU, MEMORY, HostTable, PlacementRequest

HEADROOM = (0.20, 0.10, 0.30, 0.20)


def loaded_table(seed: int, hosts: int, numa_nodes: int) -> HostTable:
    """Hosts of mixed sizes with awkward fractional loads (some over their NUMA share)."""
    rng = np.random.default_rng(seed)
    table = HostTable.uniform(hosts, cpu=96 * 2.0, memory_gib=512.0, network_gbps=25.0, iops=50000.0,
                              numa_nodes=numa_nodes)
    table.capacity *= rng.choice([0.5, 1.0, 3.0], size=hosts)[None, :]
    table.numa_capacity = table.capacity[:2, None, :] / numa_nodes * np.ones((1, numa_nodes, 1))
    table.allocated = table.capacity * rng.uniform(0.0, 1.1, size=(4, hosts))
    table.numa_allocated = table.numa_capacity * rng.uniform(0.0, 1.1, size=(2, numa_nodes, hosts))
    return table


demands = st.tuples(st.floats(0.0, 64.0), st.floats(0.0, 256.0), st.floats(0.0, 5.0), st.floats(0.0, 5000.0))


def fits_reference(table: HostTable, demand: tuple[float, ...], row: int) -> bool:
    return all(table.capacity[r, row] * (1.0 - HEADROOM[r]) - table.allocated[r, row] >= demand[r] - EPS
               for r in range(4) if demand[r] > 0)


def cross_node_reference(table: HostTable, demand: tuple[float, ...], row: int) -> float:
    cpu, memory = max(demand[CPU], EPS), max(demand[MEMORY], EPS)
    best = 0.0
    for node in range(table.numa_capacity.shape[1]):
        cpu_share = (table.numa_capacity[0, node, row] - table.numa_allocated[0, node, row]) / cpu
        memory_share = (table.numa_capacity[1, node, row] - table.numa_allocated[1, node, row]) / memory
        best = max(best, min(cpu_share, memory_share))
    return 1.0 - min(best, 1.0)


def spread_reference(table: HostTable, demand: tuple[float, ...], row: int) -> float:
    used = 0.0
    for r in range(4):
        used += (table.allocated[r, row] + demand[r]) / table.capacity[r, row]
    return 1.0 - min(max(used / 4, 0.0), 1.0)


@given(seed=st.integers(0, 2**32 - 1), hosts=st.integers(1, 40), numa_nodes=st.integers(1, 4), demand=demands)
def test_resource_fit_numa_and_spread_equal_their_per_host_formulas_exactly(
        seed: int, hosts: int, numa_nodes: int, demand: tuple[float, float, float, float]) -> None:
    note(f"seed={seed}")
    table = loaded_table(seed, hosts, numa_nodes)
    request = PlacementRequest(vm_id="vm", demand=demand)
    fits = ResourceFit(HEADROOM).feasible(table, request)
    ratio = cross_node_ratio(table, request)
    spread = Allocation("spread").score(table, request)
    for row in range(hosts):
        assert bool(fits[row]) == fits_reference(table, demand, row), row
        assert ratio[row] == cross_node_reference(table, demand, row), row
        assert spread[row] == spread_reference(table, demand, row), row


def test_a_window_view_gives_the_same_bits_as_the_whole_table() -> None:
    """The scheduler scores a window of rows as views into the table's arrays (strided, not
    contiguous): the values must not depend on it."""
    table = loaded_table(3, 300, 2)
    request = PlacementRequest(vm_id="vm", demand=(2.0, 4.0, 0.1, 200.0))
    view = table.window(100, 200, ())
    assert np.array_equal(cross_node_ratio(view, request), cross_node_ratio(table, request)[100:200])
    assert np.array_equal(Allocation().score(view, request), Allocation().score(table, request)[100:200])
    assert np.array_equal(ResourceFit(HEADROOM).feasible(view, request),
                          ResourceFit(HEADROOM).feasible(table, request)[100:200])
