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

from novacron.scheduler.state import CPU, MEMORY, BoolArray, FloatArray, HostTable, PlacementRequest

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


class ReadsDemandAndGroupsOnly:
    """A filter that reads a request only through its demand and its groups: ``rebalance`` then
    evaluates it once per (row, demand) for every VM of that shape on the row. A filter opts in by
    deriving from this class."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class HostUp(ReadsDemandAndGroupsOnly):
    name: str = "host_up"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        return hosts.up.copy()


@dataclass(frozen=True, slots=True)
class ResourceFit(ReadsDemandAndGroupsOnly):
    headroom: tuple[float, float, float, float] = (0.20, 0.10, 0.30, 0.20)
    name: str = "resource_fit"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        # All resources in one (resources, hosts) block: a scheduler window is ~100 hosts, where
        # numpy's cost is per call, not per element, so four row-by-row passes cost 4x one pass.
        # Element by element the arithmetic is the row-by-row one: same mask, bit for bit.
        if min(request.demand) <= 0:
            return self._feasible_rows(hosts, request)
        room = hosts.capacity * np.subtract(1.0, self.headroom)[:, None]
        room -= hosts.allocated
        fits: BoolArray = np.logical_and.reduce(room >= np.subtract(request.demand, EPS)[:, None], axis=0)
        return fits

    def _feasible_rows(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        """Only the resources the VM asks for (a zero demand never fails the fit)."""
        fits = np.ones(hosts.size, dtype=bool)
        for r, (demand, headroom) in enumerate(zip(request.demand, self.headroom, strict=True)):
            if demand > 0:
                fits &= hosts.capacity[r] * (1.0 - headroom) - hosts.allocated[r] >= demand - EPS
        return fits


@dataclass(frozen=True, slots=True)
class AntiAffinity(ReadsDemandAndGroupsOnly):
    name: str = "anti_affinity"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        if request.anti_affinity_group is None:
            return np.ones(hosts.size, dtype=bool)
        free: BoolArray = hosts.group_counts(request.anti_affinity_group) == 0
        return free


@dataclass(frozen=True, slots=True)
class Affinity(ReadsDemandAndGroupsOnly):
    name: str = "affinity"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        counts = hosts.group_counts(request.affinity_group) if request.affinity_group else None
        if counts is None or not counts.any():
            return np.ones(hosts.size, dtype=bool)
        return counts > 0


def cross_node_ratio(hosts: HostTable, request: PlacementRequest) -> FloatArray:
    """Per host: the share of the VM that cannot be placed on its best single NUMA node."""
    cpu, memory = max(request.demand[CPU], EPS), max(request.demand[MEMORY], EPS)
    # Every node at once: a scheduler window is ~100 hosts, where numpy's cost is per call.
    share = hosts.numa_capacity - hosts.numa_allocated  # (cpu/memory, nodes, hosts)
    share[0] /= cpu
    share[1] /= memory
    fit = np.minimum(share[0], share[1])  # per node: the share of the VM it can hold
    best = np.maximum.reduce(fit, axis=0)
    np.maximum(best, 0.0, out=best)  # a node with no room holds none of it
    np.minimum(best, 1.0, out=best)
    ratio: FloatArray = 1.0 - best
    return ratio


@dataclass(frozen=True, slots=True)
class NumaLocality(ReadsDemandAndGroupsOnly):
    """Filter: the share of the VM that would sit off its home NUMA node stays under a cap."""

    max_cross_node_ratio: float = 0.20
    name: str = "numa_locality"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        return cross_node_ratio(hosts, request) < self.max_cross_node_ratio


@dataclass(frozen=True, slots=True)
class NumaScore:
    """Score: the more of the VM fits on one NUMA node, the better."""

    name: str = "numa"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        return 1.0 - cross_node_ratio(hosts, request)


@dataclass(frozen=True, slots=True)
class Allocation:
    """Score: mean share of each resource in use after placing; spread prefers low, pack high."""

    strategy: Literal["spread", "pack"] = "spread"
    name: str = "allocation"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        share = hosts.allocated + np.array(request.demand)[:, None]
        share /= hosts.capacity  # capacity > 0 is a HostTable invariant
        used = share[0].copy()
        for r in range(1, len(request.demand)):
            used += share[r]  # resource by resource, in order: the same sum, bit for bit
        used_mean: FloatArray = used / len(request.demand)
        np.minimum(np.maximum(used_mean, 0.0, out=used_mean), 1.0, out=used_mean)  # np.clip, at a third of its cost
        return 1.0 - used_mean if self.strategy == "spread" else used_mean


@dataclass(frozen=True, slots=True)
class EnergyScore:
    """Score: the marginal power the VM adds (a powered-off host costs its idle power too)."""

    idle_w: float = 200.0
    peak_w: float = 400.0
    name: str = "energy"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        cpu_share = request.demand[CPU] / np.maximum(hosts.capacity[CPU], EPS)
        marginal_w = (self.peak_w - self.idle_w) * cpu_share + np.where(hosts.powered_on, 0.0, self.idle_w)
        score: FloatArray = np.clip(1.0 - marginal_w / self.peak_w, 0.0, 1.0)
        return score


@dataclass(frozen=True, slots=True)
class NetworkScore:
    same_rack_credit: float = 0.5
    name: str = "network"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        credit = np.zeros(hosts.size)
        if not request.peer_hosts:
            return credit
        rows = np.searchsorted(hosts.index, request.peer_hosts)
        in_table = np.minimum(rows, hosts.size - 1)
        peer_rows = in_table[hosts.index[in_table] == np.asarray(request.peer_hosts)]
        # Racks come with the request when the scheduler evaluates a window of the hosts, so
        # peers outside the window still give their rack credit.
        racks = request.peer_racks or tuple(int(r) for r in hosts.rack[peer_rows])
        for rack in sorted(set(racks)):
            credit[hosts.rack == rack] += self.same_rack_credit * racks.count(rack)
        np.add.at(credit, peer_rows, 1.0 - self.same_rack_credit)
        credit /= len(request.peer_hosts)
        return credit
