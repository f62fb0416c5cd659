"""Admission control for migrations: a cost model, caps, headroom, a priority queue, a token bucket.

Theory of operation
-------------------
A migration *costs* its source and its destination a share of CPU (the migration thread),
network (its planned bandwidth over the NIC), I/O (disk copy, if any) and, on the destination,
memory (the VM's RAM, reserved before the copy starts). It is admitted only if, with the costs
of everything already running added, both hosts keep the headroom the NovaCron analysis asks
for (CPU 20 %, memory 10 %, network 30 %, I/O 20 %), if neither host already runs
``max_per_host`` migrations (2) and the cluster ``max_global`` (10), and if the token bucket
(``rate_per_s`` refill, ``burst`` capacity) has a token, which turns a storm of requests into
a steady trickle. A host already over its CPU or memory ceiling may still be the *source*
(moving a VM away is how it gets its headroom back). Requests that cannot start wait in a
priority queue (highest priority first, then first come); ``pop_admissible`` admits, in that
order, every waiting request that now fits, so a small request behind a blocked large one is not starved.

API for the scheduler's rebalancer::

    adm = AdmissionController(AdmissionPolicy())
    adm.update_host("host-1", HostLoad(cpu_pct=40, memory_pct=55, network_pct=10, io_pct=5))
    decision = adm.can_admit(request, now_s)    # pure: would it be admitted now? (.admitted, .reason)
    decision = adm.try_admit(request, now_s)    # admits (takes a slot and a token) or not
    adm.enqueue(request, now_s); adm.pop_admissible(now_s) -> admitted requests
    adm.release(migration_id)                   # when it ends, whatever the outcome

All state changes are plain method calls with the time passed in; nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

RESOURCES = ("cpu", "memory", "network", "io")
EVACUATION_RESOURCES = ("cpu", "memory")
"""A source already above its CPU or memory ceiling may still send a VM away: the migration is
the remedy for that host (the evacuation rule). Its network and I/O headroom are still kept."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostLoad:
    """One share per resource, in percent of the host's capacity: a host's utilisation without
    migrations, or the headroom an ``AdmissionPolicy`` keeps free."""

    cpu_pct: float = 0.0
    memory_pct: float = 0.0
    network_pct: float = 0.0
    io_pct: float = 0.0

    def get(self, resource: str) -> float:
        return float(getattr(self, f"{resource}_pct"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionPolicy:
    max_per_host: int = 2
    max_global: int = 10
    headroom: HostLoad = HostLoad(cpu_pct=20.0, memory_pct=10.0, network_pct=30.0, io_pct=20.0)
    """The share of each resource kept free on every host, in percent of capacity."""
    rate_per_s: float = 2.0
    burst: int = 10

    def ceiling_pct(self, resource: str) -> float:
        return 100.0 - self.headroom.get(resource)


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationCost:
    """What a migration adds to each host, in percent of that host's capacity."""

    source: HostLoad
    destination: HostLoad


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionRequest:
    migration_id: str
    vm_id: str
    source_host_id: str
    destination_host_id: str
    cost: MigrationCost
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    reason: str

    def __bool__(self) -> bool:
        return self.admitted


def estimate_cost(*, vm_memory_gib: float, bandwidth_gbps: float, host_memory_gib: float,
                  host_network_gbps: float, host_cpu_cores: int, disk_iops_share_pct: float = 0.0) -> MigrationCost:
    """The cost model: one migration thread per side, its bandwidth on both NICs, RAM on the target."""
    network_pct = 100.0 * bandwidth_gbps / host_network_gbps
    cpu_pct = 100.0 / host_cpu_cores
    return MigrationCost(
        source=HostLoad(cpu_pct=cpu_pct, network_pct=network_pct, io_pct=disk_iops_share_pct),
        destination=HostLoad(cpu_pct=cpu_pct, memory_pct=100.0 * vm_memory_gib / host_memory_gib,
                             network_pct=network_pct, io_pct=disk_iops_share_pct))


@dataclass
class TokenBucket:
    rate_per_s: float
    capacity: float
    tokens: float = -1.0
    updated_s: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def available(self, now_s: float) -> float:
        return min(self.capacity, self.tokens + max(now_s - self.updated_s, 0.0) * self.rate_per_s)

    def take(self, now_s: float) -> None:
        self.tokens = self.available(now_s) - 1.0
        self.updated_s = max(now_s, self.updated_s)


@dataclass
class AdmissionController:
    policy: AdmissionPolicy = field(default_factory=AdmissionPolicy)
    loads: dict[str, HostLoad] = field(default_factory=dict)
    running: dict[str, AdmissionRequest] = field(default_factory=dict)
    _queue: list[tuple[int, int, AdmissionRequest]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _bucket: TokenBucket | None = None
    peak_global: int = 0
    peak_per_host: int = 0

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(self.policy.rate_per_s, float(self.policy.burst))

    def update_host(self, host_id: str, load: HostLoad) -> None:
        self.loads[host_id] = load

    def _with(self, planned: Sequence[AdmissionRequest]) -> list[AdmissionRequest]:
        return [*self.running.values(), *planned]

    def running_on(self, host_id: str, planned: Sequence[AdmissionRequest] = ()) -> int:
        return sum(1 for r in self._with(planned) if host_id in (r.source_host_id, r.destination_host_id))

    def vm_migrating(self, vm_id: str, planned: Sequence[AdmissionRequest] = ()) -> bool:
        return any(r.vm_id == vm_id for r in self._with(planned))

    def committed(self, host_id: str, resource: str, planned: Sequence[AdmissionRequest] = ()) -> float:
        """Utilisation of a host with the cost of its running (and planned) migrations added."""
        base = self.loads.get(host_id, HostLoad()).get(resource)
        for r in self._with(planned):
            if r.source_host_id == host_id:
                base += r.cost.source.get(resource)
            if r.destination_host_id == host_id:
                base += r.cost.destination.get(resource)
        return base

    def can_admit(self, request: AdmissionRequest, now_s: float, planned: Sequence[AdmissionRequest] = ()) -> Decision:
        """Would ``request`` be admitted now, alongside the running migrations and ``planned`` ones
        (requests a caller intends to start together with it)? Changes nothing."""
        p = self.policy
        if request.source_host_id == request.destination_host_id:
            return Decision(False, "source and destination are the same host")
        if self.vm_migrating(request.vm_id, planned):
            return Decision(False, f"{request.vm_id} is already migrating")
        if len(self.running) + len(planned) >= p.max_global:
            return Decision(False, f"{p.max_global} migrations already running")
        for host in (request.source_host_id, request.destination_host_id):
            if self.running_on(host, planned) >= p.max_per_host:
                return Decision(False, f"{host} already runs {p.max_per_host} migrations")
        for host, cost in ((request.source_host_id, request.cost.source),
                           (request.destination_host_id, request.cost.destination)):
            for resource in RESOURCES:
                now_pct = self.committed(host, resource, planned)
                after = now_pct + cost.get(resource)
                evacuating = (host == request.source_host_id and resource in EVACUATION_RESOURCES
                              and now_pct > p.ceiling_pct(resource))
                if after > p.ceiling_pct(resource) + 1e-9 and not evacuating:
                    return Decision(False, f"{host} {resource} would reach {after:.1f} % "
                                           f"(headroom {100 - p.ceiling_pct(resource):g} %)")
        assert self._bucket is not None
        if self._bucket.available(now_s) < 1.0 + len(planned):
            return Decision(False, "rate limit: no token")
        return Decision(True, "admitted")

    def try_admit(self, request: AdmissionRequest, now_s: float) -> Decision:
        decision = self.can_admit(request, now_s)
        if decision.admitted:
            assert self._bucket is not None
            self._bucket.take(now_s)
            self.running[request.migration_id] = request
            self.peak_global = max(self.peak_global, len(self.running))
            self.peak_per_host = max(self.peak_per_host, self.running_on(request.source_host_id),
                                     self.running_on(request.destination_host_id))
        return decision

    def release(self, migration_id: str) -> None:
        self.running.pop(migration_id, None)

    def enqueue(self, request: AdmissionRequest, now_s: float) -> None:
        heapq.heappush(self._queue, (-request.priority, next(self._order), request))

    @property
    def queued(self) -> int:
        return len(self._queue)

    def withdraw(self, migration_id: str) -> AdmissionRequest | None:
        for i, (_, _, r) in enumerate(self._queue):
            if r.migration_id == migration_id:
                self._queue.pop(i)
                heapq.heapify(self._queue)
                return r
        return None

    def pop_admissible(self, now_s: float) -> list[AdmissionRequest]:
        """Admit, in priority order, every queued request that fits now."""
        admitted: list[AdmissionRequest] = []
        kept: list[tuple[int, int, AdmissionRequest]] = []
        while self._queue:
            item = heapq.heappop(self._queue)
            if self.try_admit(item[2], now_s):
                admitted.append(item[2])
            else:
                kept.append(item)
        for item in kept:
            heapq.heappush(self._queue, item)
        return admitted

    def next_token_s(self, now_s: float) -> float:
        """When the bucket will next hold a token (for a driver deciding when to retry)."""
        assert self._bucket is not None
        missing = 1.0 - self._bucket.available(now_s)
        return now_s if missing <= 0 else now_s + missing / self._bucket.rate_per_s
