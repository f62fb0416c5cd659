"""Host state as a struct of arrays, and the placement request the policies read.

Theory of operation
-------------------
Policies evaluate every host at once, so host state is kept column-wise (a struct of arrays,
as in the Kubernetes scheduler's node snapshot but in numpy): ``capacity`` and ``allocated``
are ``(4, hosts)`` float arrays over the resources CPU (vCPUs, after overcommit), memory (GiB),
network (Gbit/s) and disk I/O (IOPS). NUMA state is ``(2, numa_nodes, hosts)``: CPU and memory
per NUMA node. Affinity groups are a map from group name to a per-host count of the group's
members (stored sparsely, row -> members, since a large cluster has many small groups and a
dense array per group would cost hosts x groups integers). ``index`` maps the rows back to the
cluster's host numbering, so a subset of rows (``take``, ``window``) is still a valid table for
the same policies.

The scheduler itself never mutates a table. ``allocate`` and ``release`` are for the owner of
the table (a runtime, the rebalancer's what-if copy), which applies a decision once it is taken.
NUMA placement of a VM is deterministic: its home node is the node that can hold the largest
share of it, the rest spills to the other nodes in order, which is how ``numactl
--preferred``-style allocation behaves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

RESOURCES: tuple[str, ...] = ("cpu", "memory", "network", "io")
CPU, MEMORY, NETWORK, IO = range(4)
EMPTY_GROUPS: Mapping[str, IntArray] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementRequest:
    """One VM to place: its demand per resource and its placement constraints."""

    vm_id: str
    demand: tuple[float, float, float, float]
    """vCPUs, memory GiB, network Gbit/s, IOPS."""
    affinity_group: str | None = None
    anti_affinity_group: str | None = None
    peer_hosts: tuple[int, ...] = ()
    """Cluster host indices of the VMs this one talks to (network-aware placement)."""
    peer_racks: tuple[int, ...] = ()
    """Their racks; filled in by the scheduler when it scores a window of the hosts."""

    def demand_array(self) -> FloatArray:
        return np.asarray(self.demand, dtype=np.float64)

    def signature(self) -> tuple[object, ...]:
        """The decision cache's key: what the choice depends on besides host state.

        Anti-affinity is left out on purpose: members of different groups of the same shape
        share decisions, and a cached host that now holds a member is caught by the
        feasibility re-check on every hit.
        """
        return (self.demand, self.affinity_group, self.peer_hosts)


@dataclass(slots=True)
class HostTable:
    """Per-host state, column-wise. Rows are hosts; ``index`` is each row's cluster host index."""

    host_ids: tuple[str, ...]
    capacity: FloatArray
    allocated: FloatArray
    numa_capacity: FloatArray
    numa_allocated: FloatArray
    rack: IntArray
    up: BoolArray
    powered_on: BoolArray
    index: IntArray
    groups: dict[str, dict[int, int]] = field(default_factory=dict)
    """Group name -> {row: members of the group on that row}; rows without members are absent."""
    undo_log: list[tuple[int, FloatArray, FloatArray, list[tuple[str, bool, int | None]]]] | None = None
    """While a ``what_if`` is open: what each change replaced (row, allocated, NUMA, group entries)."""

    def __post_init__(self) -> None:
        if self.capacity.shape != (len(RESOURCES), len(self.host_ids)) or not np.all(self.capacity > 0):
            raise ValueError(f"capacity must be a positive ({len(RESOURCES)}, hosts) array; policies divide by it")

    @classmethod
    def uniform(cls, hosts: int, *, cpu: float, memory_gib: float, network_gbps: float, iops: float,
                numa_nodes: int = 2, hosts_per_rack: int = 20) -> HostTable:
        capacity = np.tile(np.array([[cpu], [memory_gib], [network_gbps], [iops]], dtype=np.float64), (1, hosts))
        numa = np.tile(np.array([cpu, memory_gib])[:, None, None] / numa_nodes, (1, numa_nodes, hosts))
        return cls(host_ids=tuple(f"host-{i:04d}" for i in range(hosts)), capacity=capacity,
                   allocated=np.zeros((4, hosts)), numa_capacity=numa, numa_allocated=np.zeros_like(numa),
                   rack=np.arange(hosts, dtype=np.int64) // hosts_per_rack, up=np.ones(hosts, dtype=bool),
                   powered_on=np.ones(hosts, dtype=bool), index=np.arange(hosts, dtype=np.int64))

    @property
    def size(self) -> int:
        return len(self.host_ids)

    def free(self) -> FloatArray:
        return self.capacity - self.allocated

    def group_counts(self, group: str) -> IntArray:
        """Members of the group per row, as a dense array."""
        counts = np.zeros(self.size, dtype=np.int64)
        members = self.groups.get(group)
        if members:
            counts[list(members)] = list(members.values())
        return counts

    def take(self, rows: IntArray, groups: tuple[str | None, ...] = ()) -> HostTable:
        """A copy of some rows (the groups named, or all groups when none are named)."""
        names = [g for g in groups if g is not None] if groups else list(self.groups)
        position = {int(old): new for new, old in enumerate(rows)}
        return _unchecked(host_ids=tuple(self.host_ids[i] for i in rows), capacity=self.capacity[:, rows],
                         allocated=self.allocated[:, rows], numa_capacity=self.numa_capacity[:, :, rows],
                         numa_allocated=self.numa_allocated[:, :, rows], rack=self.rack[rows],
                         up=self.up[rows], powered_on=self.powered_on[rows], index=self.index[rows],
                         groups={g: {position[r]: c for r, c in self.groups.get(g, {}).items() if r in position}
                                 for g in names})

    def window(self, start: int, stop: int, groups: tuple[str | None, ...]) -> HostTable:
        """Rows ``start:stop`` as views (no copy), with only the groups named."""
        cut = slice(start, stop)
        return _unchecked(host_ids=self.host_ids[cut], capacity=self.capacity[:, cut], allocated=self.allocated[:, cut],
                         numa_capacity=self.numa_capacity[:, :, cut], numa_allocated=self.numa_allocated[:, :, cut],
                         rack=self.rack[cut], up=self.up[cut], powered_on=self.powered_on[cut],
                         index=self.index[cut],
                         groups={g: self._group_rows(g, start, stop) for g in groups if g is not None})

    def _group_rows(self, group: str, start: int, stop: int) -> dict[int, int]:
        """The group's members on rows ``start:stop``, renumbered from 0 (most groups are empty there)."""
        members = self.groups.get(group)
        return {r - start: c for r, c in members.items() if start <= r < stop} if members else {}

    def copy(self) -> HostTable:
        return _unchecked(host_ids=self.host_ids, capacity=self.capacity.copy(), allocated=self.allocated.copy(),
                         numa_capacity=self.numa_capacity.copy(), numa_allocated=self.numa_allocated.copy(),
                         rack=self.rack.copy(), up=self.up.copy(), powered_on=self.powered_on.copy(),
                         index=self.index.copy(), groups={g: dict(m) for g, m in self.groups.items()})

    def numa_split(self, row: int, demand: FloatArray) -> FloatArray:
        """How a VM's CPU and memory would spread over the row's NUMA nodes, ``(2, nodes)``."""
        # Scalar Python: a host has a handful of nodes, and tiny numpy ops cost more than they do.
        free = (self.numa_capacity[:, :, row] - self.numa_allocated[:, :, row]).tolist()
        cpu, memory = float(demand[CPU]), float(demand[MEMORY])
        nodes = range(len(free[0]))
        share = [min(free[0][k] / max(cpu, 1e-12), free[1][k] / max(memory, 1e-12)) for k in nodes]
        order = sorted(nodes, key=lambda k: -share[k])
        split = [[0.0] * len(share), [0.0] * len(share)]
        remaining = [cpu, memory]
        for k in order:
            for r in (0, 1):
                split[r][k] = min(remaining[r], max(free[r][k], 0.0))
                remaining[r] -= split[r][k]
        for r in (0, 1):
            split[r][order[0]] += remaining[r]  # only when the host is overfull; keeps totals exact
        return np.array(split)

    @contextmanager
    def what_if(self) -> Iterator[HostTable]:
        """Changes made to this table inside the block are undone, exactly, when it ends."""
        if self.undo_log is not None:
            raise RuntimeError("what_if blocks do not nest")
        self.undo_log = []
        try:
            yield self
        finally:
            log, self.undo_log = self.undo_log, None
            for row, allocated, numa, entries in reversed(log):
                self.allocated[:, row] = allocated
                self.numa_allocated[:, :, row] = numa
                for group, existed, count in reversed(entries):
                    if not existed:
                        self.groups.pop(group, None)
                    elif count is None:
                        self.groups[group].pop(row, None)
                    else:
                        self.groups[group][row] = count

    def _remember(self, row: int, request: PlacementRequest) -> None:
        assert self.undo_log is not None
        entries = [(g, g in self.groups, self.groups.get(g, {}).get(row))
                   for g in (request.affinity_group, request.anti_affinity_group) if g is not None]
        self.undo_log.append((row, self.allocated[:, row].copy(), self.numa_allocated[:, :, row].copy(), entries))

    def allocate(self, row: int, request: PlacementRequest) -> FloatArray:
        """Account the VM on ``row``; returns its NUMA split, needed to release it later."""
        if self.undo_log is not None:
            self._remember(row, request)
        demand = request.demand_array()
        split = self.numa_split(row, demand)
        self.allocated[:, row] += demand
        self.numa_allocated[:, :, row] += split
        for group in (request.affinity_group, request.anti_affinity_group):
            if group is not None:
                members = self.groups.setdefault(group, {})
                members[row] = members.get(row, 0) + 1
        return split

    def release(self, row: int, request: PlacementRequest, numa_split: FloatArray) -> None:
        if self.undo_log is not None:
            self._remember(row, request)
        self.allocated[:, row] = np.maximum(self.allocated[:, row] - request.demand_array(), 0.0)
        self.numa_allocated[:, :, row] = np.maximum(self.numa_allocated[:, :, row] - numa_split, 0.0)
        for group in (request.affinity_group, request.anti_affinity_group):
            members = self.groups.get(group) if group is not None else None
            if members and row in members:
                members[row] -= 1
                if members[row] <= 0:
                    del members[row]


def _unchecked(**fields: object) -> HostTable:
    """A table built from parts of a valid one (rows, views, copies): its capacity was checked
    when that table was built, and re-checking it on every scheduler window costs more than the
    window does."""
    table = object.__new__(HostTable)
    for name in _FIELDS:
        object.__setattr__(table, name, fields.get(name))
    return table


_FIELDS = tuple(f.name for f in dataclasses.fields(HostTable))
