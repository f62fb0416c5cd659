"""Hierarchical placement: the global scheduler picks a cluster, the cluster's scheduler a host.

Theory of operation
-------------------
A request names the VM's size, its users' datacenter, the datacenter holding its data and its
HA group. The global scheduler ranks the clusters it believes can take it -- from its
eventually consistent metrics view (``novacron.federation.gossip``), so the belief can be stale --
by the federation's policy:

- ``capacity``: the most free CPU (as a share of the cluster) first;
- ``latency``: the smallest round trip from the users' datacenter first;
- ``cost``: the cheapest vCPU-hour first, then latency;
- ``locality``: the data's own datacenter first, then the smallest round trip from it.

Ties break on free CPU, then cluster id, so a ranking is deterministic. Clusters of datacenters
the federation declared lost, and of datacenters already holding a member of the request's HA
group (anti-affinity across datacenters), are left out. The request is then delegated to the
first cluster, whose ``ClusterScheduler`` places it on a host with its own, authoritative
capacity (spread: the host with the most free CPU that keeps the headroom); if none fits, the
request moves on to the next cluster of the ranking.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from novacron.federation.gossip import ClusterSummary
from novacron.federation.wan import WanMatrix


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    vm_id: str
    cpu: float
    memory_gib: float
    user_datacenter: int
    data_datacenter: int
    group: str


@dataclass(frozen=True, slots=True)
class GlobalPolicy:
    policy: str
    wan: WanMatrix
    cost_per_vcpu_h: tuple[float, ...]


def rank_clusters(request: PlacementRequest, view: Sequence[ClusterSummary], policy: GlobalPolicy, *,
                  lost: Collection[int], avoid_datacenters: Collection[int]) -> list[int]:
    """Cluster ids that may take the request, best first."""
    candidates = [s for s in view if s.datacenter not in lost and s.datacenter not in avoid_datacenters
                  and s.free_cpu >= request.cpu and s.free_memory_gib >= request.memory_gib]
    return [s.cluster for s in sorted(candidates, key=lambda s: _key(request, s, policy))]


def _key(request: PlacementRequest, s: ClusterSummary, policy: GlobalPolicy) -> tuple[float, ...]:
    free_share = -s.free_cpu / s.total_cpu if s.total_cpu else 0.0
    user_rtt = policy.wan.rtt(request.user_datacenter, s.datacenter)
    if policy.policy == "capacity":
        return (free_share, user_rtt, s.cluster)
    if policy.policy == "cost":
        price = policy.cost_per_vcpu_h[s.datacenter] if policy.cost_per_vcpu_h else 0.0
        return (price, user_rtt, free_share, s.cluster)
    if policy.policy == "locality":
        away = 0.0 if s.datacenter == request.data_datacenter else 1.0
        return (away, policy.wan.rtt(request.data_datacenter, s.datacenter), free_share, s.cluster)
    return (user_rtt, free_share, s.cluster)


class ClusterScheduler:
    """One cluster's hosts and its spread placement with headroom (the cluster's own decision)."""

    def __init__(self, hosts: int, host_cpu: float, host_memory_gib: float, *, headroom_cpu_pct: float,
                 headroom_memory_pct: float) -> None:
        self.host_cpu = host_cpu
        self.host_memory_gib = host_memory_gib
        self.cpu_cap = host_cpu * (1 - headroom_cpu_pct / 100)
        self.memory_cap = host_memory_gib * (1 - headroom_memory_pct / 100)
        self.cpu_used = [0.0] * hosts
        self.memory_used = [0.0] * hosts

    def place(self, cpu: float, memory_gib: float, exclude: Collection[int] = ()) -> int | None:
        """Reserve room on the host with the most free CPU that keeps the headroom, or None."""
        best, best_free = None, -1.0
        for h, used in enumerate(self.cpu_used):
            fits = used + cpu <= self.cpu_cap + 1e-9 and self.memory_used[h] + memory_gib <= self.memory_cap + 1e-9
            if h not in exclude and fits:
                free = self.cpu_cap - used
                if free > best_free:
                    best, best_free = h, free
        if best is not None:
            self.cpu_used[best] += cpu
            self.memory_used[best] += memory_gib
        return best

    def release(self, host: int, cpu: float, memory_gib: float) -> None:
        self.cpu_used[host] -= cpu
        self.memory_used[host] -= memory_gib

    def summary(self, cluster: int, datacenter: int, version: int, now_s: float, vms: int) -> ClusterSummary:
        hosts = len(self.cpu_used)
        return ClusterSummary(cluster=cluster, datacenter=datacenter, version=version, written_s=now_s,
                              free_cpu=hosts * self.cpu_cap - sum(self.cpu_used),
                              free_memory_gib=hosts * self.memory_cap - sum(self.memory_used),
                              total_cpu=hosts * self.cpu_cap, total_memory_gib=hosts * self.memory_cap, vms=vms)

    def utilisation_pct(self) -> tuple[float, float]:
        hosts = len(self.cpu_used)
        return (100 * sum(self.cpu_used) / (hosts * self.host_cpu),
                100 * sum(self.memory_used) / (hosts * self.host_memory_gib))


@dataclass(frozen=True, slots=True)
class EvacuationCaps:
    """The migration admission caps, applied to restarts of a lost datacenter's VMs: at most
    ``per_host`` restarts landing on one host at once and ``global_`` in the whole federation."""

    per_host: int
    global_: int

    def admits(self, running_on_host: int, running_global: int) -> bool:
        return running_on_host < self.per_host and running_global < self.global_
