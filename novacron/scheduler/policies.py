"""Placement policies: filters (which hosts may take the VM) and scorers (how good each host is).

Theory of operation
-------------------
As OpenStack Nova's filter scheduler (filters, then weighers) and the Kubernetes scheduling
framework (Filter, then Score plugins), a policy is either a filter returning a boolean mask
over hosts or a scorer returning a float in [0, 1] per host (1 = best). Each reads the whole
``HostTable`` at once with numpy and never mutates it, so one evaluation over thousands of hosts
is a few dozen vector operations.

- ``ResourceFit``: the VM fits with headroom kept on every resource: after placement,
  ``allocated + demand <= capacity * (1 - headroom)`` (NovaCron targets: CPU 20 %, memory 10 %,
  network 30 %, I/O 20 %).
- ``Affinity`` / ``AntiAffinity``: Nova's ServerGroup(Anti)AffinityFilter: with members of the
  group, only hosts that run (affinity) / do not run (anti-affinity) one.
- ``NumaLocality``: the share of the VM that cannot sit on one NUMA node (its cross-node access
  ratio, memory accessed remotely) must stay below 20 %; ``NumaScore`` prefers fully local fits.
- ``Allocation``: Kubernetes' LeastAllocated (spread) or MostAllocated (pack): the mean over
  resources of the free (spread) or used (pack) fraction after placement.
- ``EnergyScore``: linear power model P = P_idle + (P_peak - P_idle) * u (Fan, Weber and
  Barroso, "Power provisioning for a warehouse-sized computer", ISCA 2007); the score is one minus
  the marginal watts the VM costs, so a powered-off host (which must pay P_idle) scores lowest.
- ``NetworkScore``: the share of the VM's peers on the same host (full credit) or the same rack
  (half credit): traffic that stays under the top-of-rack switch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from novacron.scheduler.state import CPU, MEMORY, BoolArray, FloatArray, HostTable, IntArray, PlacementRequest

EPS = 1e-9


class Filter(Protocol):
    @property
    def name(self) -> str: ...

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        """True where the host may take the VM. Pure: reads, never writes, ``hosts``."""
        ...


class Scorer(Protocol):
    @property
    def name(self) -> str: ...

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        """A score in [0, 1] per host, higher is better. Pure."""
        ...


@dataclass(frozen=True, slots=True)
class HostUp:
    name: str = "host_up"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        return hosts.up.copy()


@dataclass(frozen=True, slots=True)
class ResourceFit:
    headroom: tuple[float, float, float, float] = (0.20, 0.10, 0.30, 0.20)
    name: str = "resource_fit"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        # Row by row: one host row is small enough (< 128 KiB at 5000 hosts) that numpy's
        # temporaries stay on the heap instead of costing an mmap and page faults each.
        fits = np.ones(hosts.size, dtype=bool)
        for r, (demand, headroom) in enumerate(zip(request.demand, self.headroom, strict=True)):
            if demand > 0:
                fits &= hosts.allocated[r] + (demand - EPS) <= hosts.capacity[r] * (1.0 - headroom)
        return fits


@dataclass(frozen=True, slots=True)
class AntiAffinity:
    name: str = "anti_affinity"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        if request.anti_affinity_group is None:
            return np.ones(hosts.size, dtype=bool)
        free: BoolArray = hosts.group_counts(request.anti_affinity_group) == 0
        return free


@dataclass(frozen=True, slots=True)
class Affinity:
    name: str = "affinity"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        counts = hosts.group_counts(request.affinity_group) if request.affinity_group else None
        if counts is None or not counts.any():
            return np.ones(hosts.size, dtype=bool)
        return counts > 0


def cross_node_ratio(hosts: HostTable, request: PlacementRequest) -> FloatArray:
    """Per host: the share of the VM that cannot be placed on its best single NUMA node."""
    cpu, memory = max(request.demand[CPU], EPS), max(request.demand[MEMORY], EPS)
    best = np.zeros(hosts.size)
    for node in range(hosts.numa_capacity.shape[1]):
        cpu_share = (hosts.numa_capacity[0, node] - hosts.numa_allocated[0, node]) / cpu
        memory_share = (hosts.numa_capacity[1, node] - hosts.numa_allocated[1, node]) / memory
        np.maximum(best, np.minimum(cpu_share, memory_share), out=best)
    ratio: FloatArray = 1.0 - np.minimum(best, 1.0)
    return ratio


@dataclass(frozen=True, slots=True)
class NumaLocality:
    max_cross_node_ratio: float = 0.20
    name: str = "numa_locality"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        return cross_node_ratio(hosts, request) < self.max_cross_node_ratio


@dataclass(frozen=True, slots=True)
class NumaScore:
    name: str = "numa"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        return 1.0 - cross_node_ratio(hosts, request)


@dataclass(frozen=True, slots=True)
class Allocation:
    strategy: Literal["spread", "pack"] = "spread"
    name: str = "allocation"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        used = np.zeros(hosts.size)
        for r, demand in enumerate(request.demand):
            used += (hosts.allocated[r] + demand) / np.maximum(hosts.capacity[r], EPS)
        used_mean: FloatArray = np.clip(used / len(request.demand), 0.0, 1.0)
        return 1.0 - used_mean if self.strategy == "spread" else used_mean


@dataclass(frozen=True, slots=True)
class EnergyScore:
    idle_w: float = 200.0
    peak_w: float = 400.0
    name: str = "energy"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        cpu_share = request.demand[CPU] / np.maximum(hosts.capacity[CPU], EPS)
        marginal_w = (self.peak_w - self.idle_w) * cpu_share + np.where(hosts.powered_on, 0.0, self.idle_w)
        score: FloatArray = np.clip(1.0 - marginal_w / self.peak_w, 0.0, 1.0)
        return score


def _counts_at(values: IntArray, where: IntArray) -> IntArray:
    """How many times each entry of ``where`` occurs in ``values``."""
    if values.size == 0 or where.size == 0:
        return np.zeros(where.size, dtype=np.int64)
    counts = np.bincount(values, minlength=int(max(values.max(), where.max())) + 1)
    found: IntArray = counts[where]
    return found


@dataclass(frozen=True, slots=True)
class NetworkScore:
    same_rack_credit: float = 0.5
    name: str = "network"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        if not request.peer_hosts:
            return np.zeros(hosts.size)
        peers = np.asarray(request.peer_hosts, dtype=np.int64)
        same_host = _counts_at(peers, hosts.index)
        # A peer's rack is read from this table when the peer's host is in it; take() keeps all
        # rows in the common case, and a subset only loses rack credit, never feasibility.
        rows = np.searchsorted(hosts.index, peers)
        known = (rows < hosts.size) & (hosts.index[np.minimum(rows, hosts.size - 1)] == peers)
        same_rack = _counts_at(hosts.rack[rows[known]], hosts.rack)
        credit = same_host + self.same_rack_credit * (same_rack - same_host)
        return np.clip(credit / len(peers), 0.0, 1.0)
