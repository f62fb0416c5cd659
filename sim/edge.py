"""Edge services in a simulated run: placed at time 0, their requests folded per interval.

Theory of operation
-------------------
With ``[edge] enabled``, the run places each enabled service class with the placement
scheduler (``novacron.edge.placement``: a latency budget filter and a latency scorer over the
edge sites and the cloud), aiming for the service's p95 latency target as the run's targets say
(``[targets]`` overrides included). Arrivals (``novacron.edge.arrivals``) and edge-site outages
(``novacron.edge.service``) are exogenous -- nothing in them waits on the rest of the model -- so
the whole run's intervals are computed when it starts, as ``sim.storage_xdc`` does with its
writes, and one ``EdgeServiceMeasured`` per service is emitted then. Each service and each site
draws from its own generator derived from the run seed.

``per_request_latencies_ms`` is the per-request FCFS simulation of one service's M/G/c queue the
tests check the aggregated model against.
"""

from __future__ import annotations

import dataclasses
import heapq
import math

import numpy as np
import numpy.typing as npt

from novacron.edge.arrivals import interval_counts
from novacron.edge.events import EdgeServiceMeasured, EdgeServicePlaced
from novacron.edge.placement import ServicePlacement, place_services
from novacron.edge.queueing import ServiceTime
from novacron.edge.service import SiteOutages, measure, site_outages
from novacron.scenario import Scenario, scenario_targets
from sim.context import SimContext

FloatArray = npt.NDArray[np.float64]
NO_TARGET_MS = 1e9


def latency_budgets_ms(scenario: Scenario) -> dict[str, float]:
    """Each service's p95 target (the catalogue's or the scenario's), what placement aims for."""
    targets, _ = scenario_targets(scenario)
    by_metric = {t.metric: t.threshold for t in targets}
    budgets = {}
    for name, _ in scenario.edge.services():
        threshold = by_metric.get(f"edge.{name}.latency_p95_ms", NO_TARGET_MS)
        budgets[name] = float(threshold[1] if isinstance(threshold, tuple) else threshold)
    return budgets


def start(ctx: SimContext) -> list[EdgeServiceMeasured]:
    config = ctx.scenario.edge
    if not config.enabled:
        return []
    placements = place_services(config, latency_budgets_ms(ctx.scenario), ctx.seeds.numpy("edge.placement"))
    intervals = max(1, math.ceil(ctx.scenario.duration_s / config.interval_s))
    outages = [site_outages(config, intervals, ctx.seeds.numpy(f"edge.site.{i}")) for i in range(config.sites)]
    services = dict(config.services())
    measured = []
    for placement in placements:
        _emit_placed(ctx, placement)
        if placement.row is None:
            continue
        svc = services[placement.service]
        counts = interval_counts(svc, intervals, config.interval_s, ctx.seeds.numpy(f"edge.{placement.service}"))
        site = outages[placement.row] if placement.row < config.sites else SiteOutages.none(intervals)
        result = measure(config, svc, placement, counts, site)
        measured.append(ctx.recorder.emit(EdgeServiceMeasured, source=placement.site, service=placement.service,
                                          **dataclasses.asdict(result)))
    return measured


def _emit_placed(ctx: SimContext, p: ServicePlacement) -> None:
    ctx.recorder.emit(EdgeServicePlaced, source=p.site or "edge", service=p.service, site=p.site or "unplaced",
                      network_rtt_ms=p.rtt_ms, predicted_p95_ms=p.predicted_p95_ms, budget_ms=p.budget_ms,
                      hosts_feasible=p.hosts_feasible)


def per_request_latencies_ms(rate_ops_s: float, servers: int, service: ServiceTime, requests: int,
                             rng: np.random.Generator) -> FloatArray:
    """Each request's response time (wait + service) in a FCFS M/G/c queue, one request at a time."""
    arrivals_ms = np.cumsum(rng.exponential(1000.0 / rate_ops_s, requests))
    if service.distribution == "exponential":
        work_ms = rng.exponential(service.mean_ms, requests)
    elif service.cv == 0.0:
        work_ms = np.full(requests, service.mean_ms)
    else:
        sigma = math.sqrt(math.log1p(service.cv ** 2))
        work_ms = rng.lognormal(math.log(service.mean_ms) - sigma ** 2 / 2, sigma, requests)
    free_at = [0.0] * servers  # a heap of the times each server next falls idle
    latencies = np.empty(requests)
    for i, (arrival, work) in enumerate(zip(arrivals_ms.tolist(), work_ms.tolist(), strict=True)):
        done = max(heapq.heappop(free_at), arrival) + work
        heapq.heappush(free_at, done)
        latencies[i] = done - arrival
    return latencies
