"""One edge service over a run: its intervals folded into latency percentiles, throughput, uptime.

Theory of operation
-------------------
Inputs are exogenous (they do not wait on the rest of the model): each interval's arrivals
(``arrivals``) and each edge site's outages (alternating exponential up times of mean
``site_mtbf_h`` and repairs of mean ``site_mttr_h``). For interval ``i`` of a service placed at
an edge site, the share of the interval its site was down splits into the part before failover
(``failover_s`` after the failure: its requests are unavailable) and the part after (served from
the cloud, with the cloud's round trip). A service placed in the cloud is always up (the cloud
region's own availability is not modelled).

Each served share adds the interval's M/G/c response-time distribution (``queueing``), shifted
by the network delay where it is served, to the service's ``LatencyMixture``; the run's
percentiles are read from it. The network delay is the users' round trip to that place plus the
request and response on the wire over the links crossed, the transfer inflated by ``1 / (1 - u)``
for the link's utilisation ``u`` by this service's traffic (the M/M/1 sojourn factor; other
traffic on the link is not modelled).

Uptime is time-based: the share of the run the service had somewhere to run. Throughput is the
requests served over the run's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.edge.config import EdgeConfig, EdgeServiceConfig
from novacron.edge.placement import KIB_BITS, ServicePlacement, service_time
from novacron.edge.queueing import IntervalQueue, LatencyMixture

FloatArray = npt.NDArray[np.float64]
LINK_UTILISATION_MAX = 0.99
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class SiteOutages:
    """Per interval: the share of it a site was down before failover, and after."""

    unavailable: FloatArray
    failed_over: FloatArray

    @classmethod
    def none(cls, intervals: int) -> SiteOutages:
        return cls(np.zeros(intervals), np.zeros(intervals))


def site_outages(config: EdgeConfig, intervals: int, rng: np.random.Generator) -> SiteOutages:
    """One site's outages over the run, drawn from the site's MTBF and MTTR."""
    horizon_s = intervals * config.interval_s
    edges: FloatArray = np.arange(intervals + 1, dtype=np.float64) * config.interval_s
    unavailable, failed_over = np.zeros(intervals), np.zeros(intervals)
    t = 0.0
    while True:
        t += float(rng.exponential(config.site_mtbf_h * HOUR_S))
        if t >= horizon_s:
            break
        repair_s = float(rng.exponential(config.site_mttr_h * HOUR_S)) if config.site_mttr_h > 0 else 0.0
        switch = min(t + config.failover_s, t + repair_s)
        unavailable += _covered(edges, t, switch)
        failed_over += _covered(edges, switch, t + repair_s)
        t += repair_s
    return SiteOutages(unavailable / config.interval_s, failed_over / config.interval_s)


def _covered(edges: FloatArray, start_s: float, end_s: float) -> FloatArray:
    """Seconds of each interval within ``[start_s, end_s)``."""
    covered: FloatArray = np.clip(np.minimum(edges[1:], end_s) - np.maximum(edges[:-1], start_s), 0.0, None)
    return covered


@dataclass(frozen=True, kw_only=True)
class ServiceResult:
    """One service's requests over the whole run. The one owner of these fields: the runtime
    records them as ``EdgeServiceMeasured``, an event declared from this record (not slotted, so
    an event may inherit its fields beside ``Event``'s slots)."""

    requests_arrived: float
    requests_served: float
    requests_shed: float
    """arrived while the service was overloaded beyond its cores (shed by admission control)"""
    requests_unavailable: float
    """arrived while the service had nowhere to run (edge site down, failover not done)"""
    response_p50_ms: float
    response_p95_ms: float
    response_p99_ms: float
    throughput_ops_s: float
    uptime_pct: float
    cloud_fraction: float
    """share of served requests served from the cloud (placement or failover)"""


def network_ms(config: EdgeConfig, svc: EdgeServiceConfig, rtt_ms: float, rate_ops_s: float,
               links_mbps: tuple[float, ...]) -> float:
    """Round trip plus the request and response on the wire over each link crossed."""
    bits = (svc.request_kib + svc.response_kib) * KIB_BITS
    delay = rtt_ms
    for mbps in links_mbps:
        u = min(rate_ops_s * bits / (mbps * 1e6), LINK_UTILISATION_MAX)
        delay += bits / (mbps * 1e3) / (1.0 - u)
    return delay


def measure(config: EdgeConfig, svc: EdgeServiceConfig, placement: ServicePlacement, counts: FloatArray,
            outages: SiteOutages) -> ServiceResult:
    """Fold a placed service's intervals (``counts`` arrivals each) into its run metrics."""
    interval_s = config.interval_s
    at_edge = placement.row is not None and placement.row < config.sites
    if not at_edge:
        outages = SiteOutages.none(counts.size)
    up_share = 1.0 - outages.unavailable - outages.failed_over
    cloud_rtt = config.user_edge_rtt_ms + config.edge_cloud_rtt_ms
    rates = counts / interval_s
    queues = [IntervalQueue(float(rate), svc.cores, service_time(svc)) for rate in rates]
    horizon_ms = _horizon_ms(config, svc, queues, cloud_rtt, float(rates.max(initial=0)))
    mixture = LatencyMixture(service_time(svc), horizon_ms)
    served_total = shed_total = cloud_total = 0.0
    for i, queue in enumerate(queues):
        served = min(counts[i], queue.served_ops_s * interval_s) * (1.0 - outages.unavailable[i])
        shed_total += counts[i] * (1.0 - outages.unavailable[i]) - served
        home = served * up_share[i] / max(1.0 - outages.unavailable[i], 1e-12)
        cloud = served - home
        rate = float(rates[i])
        if at_edge:
            mixture.add(queue, home, network_ms(config, svc, placement.rtt_ms, rate, (config.user_edge_mbps,)))
        else:
            cloud, home = served, 0.0
        mixture.add(queue, cloud, network_ms(config, svc, cloud_rtt, rate, (config.user_edge_mbps,
                                                                            config.edge_cloud_mbps)))
        served_total += served
        cloud_total += cloud
    unavailable = float(np.sum(counts * outages.unavailable))
    duration_s = counts.size * interval_s
    return ServiceResult(
        requests_arrived=float(counts.sum()), requests_served=served_total, requests_shed=max(shed_total, 0.0),
        requests_unavailable=unavailable, response_p50_ms=mixture.percentile_ms(50),
        response_p95_ms=mixture.percentile_ms(95), response_p99_ms=mixture.percentile_ms(99),
        throughput_ops_s=served_total / duration_s,
        uptime_pct=100.0 * (1.0 - float(outages.unavailable.sum()) / counts.size),
        cloud_fraction=cloud_total / served_total if served_total > 0 else 0.0)


def _horizon_ms(config: EdgeConfig, svc: EdgeServiceConfig, queues: list[IntervalQueue], cloud_rtt_ms: float,
                peak_rate_ops_s: float) -> float:
    worst_queue_ms = max((q.horizon_ms() for q in queues), default=svc.service_ms)
    worst_network_ms = network_ms(config, svc, cloud_rtt_ms, peak_rate_ops_s,
                                  (config.user_edge_mbps, config.edge_cloud_mbps))
    return worst_queue_ms + worst_network_ms
