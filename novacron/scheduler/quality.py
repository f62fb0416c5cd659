"""Placement quality: how many hosts a placement uses against a lower bound, and what it wastes.

Theory of operation
-------------------
- Lower bound on hosts (the classic bin-packing bound L1, Martello and Toth, "Knapsack
  Problems", 1990, ch. 8): no placement can use fewer hosts than, for each resource, the fewest
  hosts whose usable capacity covers the total demand. With identical hosts that is
  ``max over resources of ceil(total demand / usable capacity per host)``; with mixed hosts the
  largest hosts are counted first. Usable capacity is capacity minus headroom, because every
  placement here must keep the headroom.
- Fragmentation: the share of the free usable capacity (CPU and memory, each as a fraction of
  its host's capacity) that sits on hosts unable to take a reference VM (the largest flavour):
  free capacity in pieces too small to be used for it.
- Stranded resources: free usable capacity of one resource on a host where another resource is
  exhausted, so even the smallest flavour cannot land (the "stranding" of Google's Borg papers),
  as a percentage of the cluster's usable capacity of that resource.
- Imbalance: the rebalancer's metric (std-dev of dominant-share host load, percentage points).
- Minimum headroom: per resource, the least free share (percent of capacity) on any up host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from novacron.scheduler.rebalance import imbalance_pct
from novacron.scheduler.state import CPU, MEMORY, BoolArray, FloatArray, HostTable


@dataclass(frozen=True, kw_only=True)
class QualityFigures:
    """The figures of a placement's quality: one field list for the measured value
    (``PlacementQuality``) and its event (``PlacementQualitySampled``). Holds no storage itself
    (empty ``__slots__``), so both subclasses stay slotted and the event keeps its Arrow columns."""

    __slots__ = ()

    hosts_used: int
    hosts_lower_bound: int
    fragmentation_pct: float
    stranded_cpu_pct: float
    stranded_memory_pct: float
    imbalance_pct: float
    min_headroom_cpu_pct: float
    min_headroom_memory_pct: float
    min_headroom_network_pct: float
    min_headroom_io_pct: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementQuality(QualityFigures):
    """The quality ``measure`` found in a host table."""


def usable_capacity(hosts: HostTable, headroom: tuple[float, float, float, float]) -> FloatArray:
    usable: FloatArray = hosts.capacity * (1.0 - np.asarray(headroom))[:, None]
    return usable


def hosts_lower_bound(total_demand: FloatArray, usable: FloatArray) -> int:
    """The fewest hosts whose usable capacity covers the total demand on every resource."""
    bound = 0
    for r in range(usable.shape[0]):
        if total_demand[r] <= 0:
            continue
        largest_first = np.cumsum(np.sort(usable[r])[::-1])
        needed = int(np.searchsorted(largest_first, total_demand[r] * (1 - 1e-12))) + 1
        bound = max(bound, needed if needed <= usable.shape[1] else usable.shape[1] + 1)
    return bound


def uniform_lower_bound(total_demand: FloatArray, usable_per_host: FloatArray) -> int:
    """``max over resources of ceil(total / per-host)`` (identical hosts)."""
    return max((math.ceil(total_demand[r] / usable_per_host[r] - 1e-9) for r in range(len(total_demand))
                if usable_per_host[r] > 0), default=0)


def _fits(free: FloatArray, demand: FloatArray) -> BoolArray:
    fits: BoolArray = np.all(free >= demand[:, None] - 1e-9, axis=0)
    return fits


def measure(hosts: HostTable, headroom: tuple[float, float, float, float], *, smallest: FloatArray,
            reference: FloatArray) -> PlacementQuality:
    """Quality of the placement the table holds; ``smallest`` and ``reference`` are VM demands."""
    up = hosts.up
    usable = usable_capacity(hosts, headroom)
    free = np.maximum(usable - hosts.allocated, 0.0)[:, up]
    used = hosts.allocated.sum(axis=0) > 1e-9
    share = (free[[CPU, MEMORY]] / np.maximum(hosts.capacity[[CPU, MEMORY]][:, up], 1e-12)).sum(axis=0)
    unusable = ~_fits(free, reference)
    fragmentation = 100.0 * float(share[unusable].sum() / share.sum()) if share.sum() > 0 else 0.0
    stuck = ~_fits(free, smallest)
    stranded = [100.0 * float(free[r, stuck].sum() / max(usable[r, up].sum(), 1e-12)) for r in (CPU, MEMORY)]
    headroom_left = 100.0 * (1.0 - hosts.allocated[:, up] / np.maximum(hosts.capacity[:, up], 1e-12))
    min_left = headroom_left.min(axis=1) if up.any() else np.full(4, 100.0)
    return PlacementQuality(
        hosts_used=int((used & up).sum()),
        hosts_lower_bound=hosts_lower_bound(hosts.allocated.sum(axis=1), usable[:, up]),
        fragmentation_pct=fragmentation, stranded_cpu_pct=stranded[0], stranded_memory_pct=stranded[1],
        imbalance_pct=imbalance_pct(hosts),
        min_headroom_cpu_pct=float(min_left[0]), min_headroom_memory_pct=float(min_left[1]),
        min_headroom_network_pct=float(min_left[2]), min_headroom_io_pct=float(min_left[3]))
