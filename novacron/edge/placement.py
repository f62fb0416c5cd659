"""Placing edge services with the placement scheduler: a latency budget filter and a latency scorer.

Theory of operation
-------------------
The candidate "hosts" are places: each edge site and the cloud region, as rows of a
``HostTable`` (CPU = cores, memory, network = the site's uplink in Gbit/s). A service asks for
its cores, memory and its request traffic. The placement scheduler (``novacron.scheduler``)
evaluates the rows with

- ``HostUp`` and ``ResourceFit`` (no headroom: cores given to a service are reserved for it),
- ``LatencyBudget``: the round trip from the service's users to the row plus the queue's
  predicted p95 (``queueing``, at the service's mean rate) stays within the service's p95 target,
- ``LatencyScore``: ``1 - predicted p95 / budget`` (clipped to [0, 1]), so the nearest feasible
  place wins and, among equals, the scheduler's seeded tie-break decides.

A service's users reach their ``home_site`` first: running there costs the user-edge round trip,
at another edge site the edge-edge round trip on top, in the cloud the edge-cloud one. Services
are placed tightest first (least slack between budget and queueing p95), so a class that only
the edge can serve is not crowded out by one that could run in the cloud. When no row meets the
budget the service goes where it is predicted fastest among the rows that fit (its target will
then report the miss), and when nothing fits it is not placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from novacron.edge.arrivals import mean_rate_ops_s
from novacron.edge.config import EdgeConfig, EdgeServiceConfig
from novacron.edge.queueing import IntervalQueue, LatencyMixture, ServiceTime
from novacron.scheduler.framework import Decision, Scheduler, WeightedScorer
from novacron.scheduler.policies import Filter, HostUp, ResourceFit
from novacron.scheduler.state import BoolArray, FloatArray, HostTable, PlacementRequest

CLOUD = "cloud"
KIB_BITS = 8192.0


@dataclass(frozen=True, slots=True)
class PredictedLatency:
    """A service's predicted p95 at each row: users' round trip there plus the queue's p95."""

    rtt_ms: FloatArray
    """per cluster index (``HostTable.index``), so a window of the table reads the right rows"""
    queue_p95_ms: float
    budget_ms: float

    def at(self, hosts: HostTable) -> FloatArray:
        predicted: FloatArray = self.rtt_ms[hosts.index] + self.queue_p95_ms
        return predicted


@dataclass(frozen=True, slots=True)
class LatencyBudget:
    """Filter: the predicted p95 within the budget."""

    latency: PredictedLatency
    name: str = "latency_budget"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        fits: BoolArray = self.latency.at(hosts) <= self.latency.budget_ms
        return fits


@dataclass(frozen=True, slots=True)
class LatencyScore:
    """Score: the share of the latency budget left over at the row."""

    latency: PredictedLatency
    name: str = "latency"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        left = 1.0 - self.latency.at(hosts) / max(self.latency.budget_ms, 1e-9)
        score: FloatArray = np.clip(left, 0.0, 1.0)
        return score


@dataclass(frozen=True, slots=True)
class ServicePlacement:
    service: str
    row: int | None
    """Row of the place in the table (``sites`` = the cloud); None when nothing could take it."""
    site: str
    rtt_ms: float
    predicted_p95_ms: float
    budget_ms: float
    hosts_feasible: int


@dataclass
class Places:
    """Edge sites then the cloud, as a host table, with each row's round trips."""

    config: EdgeConfig
    table: HostTable = field(init=False)

    def __post_init__(self) -> None:
        c, n = self.config, self.config.sites
        cores = np.array([*[c.site_cores] * n, c.cloud_cores], dtype=np.float64)
        memory = np.array([*[c.site_memory_gib] * n, c.cloud_memory_gib])
        uplink_gbps = np.array([*[c.user_edge_mbps / 1000.0] * n, c.edge_cloud_mbps / 1000.0])
        table = HostTable.uniform(n + 1, cpu=1.0, memory_gib=1.0, network_gbps=1.0, iops=1.0, numa_nodes=1)
        table.capacity[0], table.capacity[1], table.capacity[2] = cores, memory, uplink_gbps
        table.numa_capacity[0, 0], table.numa_capacity[1, 0] = cores, memory
        table.host_ids = (*(f"edge-{i}" for i in range(n)), CLOUD)
        self.table = table

    @property
    def cloud_row(self) -> int:
        return self.config.sites

    def rtt_ms(self, home_site: int) -> FloatArray:
        """Users' round trip to each row, for users whose access site is ``home_site``."""
        c = self.config
        rtt = np.full(c.sites + 1, c.user_edge_rtt_ms + c.edge_edge_rtt_ms)
        rtt[home_site] = c.user_edge_rtt_ms
        rtt[self.cloud_row] = c.user_edge_rtt_ms + c.edge_cloud_rtt_ms
        return rtt


def service_time(service: EdgeServiceConfig) -> ServiceTime:
    return ServiceTime(service.service_ms, service.service_cv, service.service_distribution)


def queue_p95_ms(service: EdgeServiceConfig) -> float:
    """The queue's p95 (wait plus service, no network) at the service's mean rate."""
    queue = IntervalQueue(mean_rate_ops_s(service), service.cores, service_time(service))
    mixture = LatencyMixture(queue.service, queue.horizon_ms())
    mixture.add(queue, 1.0, 0.0)
    return mixture.percentile_ms(95)


def traffic_gbps(service: EdgeServiceConfig) -> float:
    return mean_rate_ops_s(service) * (service.request_kib + service.response_kib) * KIB_BITS / 1e9


def place_services(config: EdgeConfig, budgets_ms: dict[str, float],
                   rng: np.random.Generator) -> list[ServicePlacement]:
    """Place every enabled service, tightest latency slack first; reserves on ``Places.table``."""
    places = Places(config)
    queued = {name: queue_p95_ms(svc) for name, svc in config.services()}
    order = sorted(config.services(), key=lambda item: budgets_ms[item[0]] - queued[item[0]])
    return [_place_one(places, name, svc, queued[name], budgets_ms[name], rng) for name, svc in order]


def _place_one(places: Places, name: str, svc: EdgeServiceConfig, queue_ms: float, budget_ms: float,
               rng: np.random.Generator) -> ServicePlacement:
    table = places.table
    rtt = places.rtt_ms(svc.home_site)
    request = PlacementRequest(vm_id=name, demand=(float(svc.cores), svc.memory_gib, traffic_gbps(svc), 0.0))
    pinned = _pinned_up(places, svc.placement)
    table.up[:] = pinned
    latency = PredictedLatency(rtt, queue_ms, budget_ms)
    fit: list[Filter] = [HostUp(), ResourceFit(headroom=(0.0, 0.0, 0.0, 0.0))]
    decision: Decision = Scheduler([*fit, LatencyBudget(latency)], [WeightedScorer(LatencyScore(latency), 1.0)]).place(
        table, request, rng)
    if not decision.placed:  # nowhere within budget: the fastest place that fits (scored against the
        # slowest place, so the scores stay far apart compared with the scheduler's tie tolerance)
        slowest = PredictedLatency(rtt, queue_ms, 2.0 * (float(rtt.max()) + queue_ms))
        decision = Scheduler(fit, [WeightedScorer(LatencyScore(slowest), 1.0)]).place(table, request, rng)
    table.up[:] = True
    if decision.row is None:
        return ServicePlacement(name, None, "", float("nan"), float("nan"), budget_ms, 0)
    table.allocate(decision.row, request)
    return ServicePlacement(name, decision.row, table.host_ids[decision.row], float(rtt[decision.row]),
                            float(rtt[decision.row]) + queue_ms, budget_ms, decision.hosts_feasible)


def _pinned_up(places: Places, placement: str) -> BoolArray:
    up = np.ones(places.table.size, dtype=bool)
    if placement == "edge":
        up[places.cloud_row] = False
    elif placement == "cloud":
        up[:places.cloud_row] = False
    return up
