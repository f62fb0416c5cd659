"""The ``[edge]`` scenario section: edge sites, the cloud behind them, and three service classes.

Off by default (``enabled = false``): a scenario without it runs exactly as before. The three
service classes are the analysis' (IoT processing, edge analytics, edge inference); each is a
subsection (``[edge.iot]``, ``[edge.analytics]``, ``[edge.inference]``) that a scenario may retune
entirely or switch off, so its metric names (``edge.iot.latency_p95_ms``...) are fixed and the
target catalogue can hold their targets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from novacron.config import ConfigError, section, spec

ARRIVALS = ("poisson", "mmpp", "trace")
PLACEMENTS = ("auto", "edge", "cloud")
SERVICE_CLASSES = ("iot", "analytics", "inference")


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeServiceConfig:
    enabled: bool = spec(True, doc="run this service class (with [edge] enabled)")
    arrival: str = spec("poisson", choices=ARRIVALS,
                        doc="request arrivals: Poisson, a two-state Markov-modulated Poisson process (bursts), "
                            "or a rate trace (rate_trace_ops_s, one rate per interval, repeated)")
    rate_ops_s: float = spec(1000.0, min=0.0, max=1e8, doc="mean request rate, requests/s (Poisson; MMPP's calm state)")
    burst_rate_factor: float = spec(3.0, min=1.0, max=1000.0, doc="MMPP: rate in the burst state over rate_ops_s")
    burst_mean_s: float = spec(30.0, min=0.001, max=1e7, doc="MMPP: mean time spent in a burst")
    calm_mean_s: float = spec(300.0, min=0.001, max=1e7, doc="MMPP: mean time between bursts")
    rate_trace_ops_s: tuple[float, ...] = spec([], min=0.0, max=1e8,
                                               doc="trace arrivals: the request rate of each interval, repeated")
    service_ms: float = spec(1.0, min=1e-4, max=1e6, doc="mean service time of one request on one core, ms")
    service_cv: float = spec(1.0, min=0.0, max=10.0,
                             doc="coefficient of variation of the service time (lognormal; 0 = deterministic, "
                                 "1 with service_distribution = 'exponential' = M/M/c)")
    service_distribution: str = spec("lognormal", choices=("lognormal", "exponential"),
                                     doc="service-time distribution (exponential ignores service_cv)")
    cores: int = spec(8, min=1, max=100_000, doc="cores given to the service (the c of M/G/c)")
    memory_gib: float = spec(8.0, min=0.0, max=1e6, doc="memory the service reserves where it runs")
    request_kib: float = spec(1.0, min=0.0, max=1e6, doc="request size on the wire")
    response_kib: float = spec(1.0, min=0.0, max=1e6, doc="response size on the wire")
    home_site: int = spec(0, min=0, max=10_000, doc="the edge site its users reach first (index)")
    placement: str = spec("auto", choices=PLACEMENTS,
                          doc="where it runs: chosen by the scheduler (latency-aware), or pinned")

    def __post_init__(self) -> None:
        if self.arrival == "trace" and not self.rate_trace_ops_s:
            raise ConfigError("arrival = 'trace' needs rate_trace_ops_s; allowed: a non-empty list of rates")

    @property
    def offered_cores(self) -> float:
        """Mean load in cores: rate x mean service time (Erlangs)."""
        return self.rate_ops_s * self.service_ms / 1000.0


def _default(name: str, value: object) -> Any:
    """A class's own default for a setting of ``EdgeServiceConfig`` (same doc and range)."""
    return dataclasses.field(default=value, metadata=EdgeServiceConfig.__dataclass_fields__[name].metadata)


# Each class has its own defaults, so that ``[edge.iot] rate_ops_s = 5000`` keeps IoT's other
# settings. Rates: the analysis'; service times and cores chosen so each class meets its latency
# target where the scheduler puts it (see the built-in ``edge`` scenario).

@dataclass(frozen=True, slots=True, kw_only=True)
class IotService(EdgeServiceConfig):
    rate_ops_s: float = _default("rate_ops_s", 10000.0)
    service_ms: float = _default("service_ms", 0.5)
    cores: int = _default("cores", 8)
    memory_gib: float = _default("memory_gib", 8.0)
    request_kib: float = _default("request_kib", 0.5)
    response_kib: float = _default("response_kib", 0.25)
    home_site: int = _default("home_site", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticsService(EdgeServiceConfig):
    arrival: str = _default("arrival", "mmpp")
    rate_ops_s: float = _default("rate_ops_s", 5100.0)
    burst_rate_factor: float = _default("burst_rate_factor", 1.5)
    service_ms: float = _default("service_ms", 4.0)
    service_cv: float = _default("service_cv", 0.8)
    cores: int = _default("cores", 40)
    memory_gib: float = _default("memory_gib", 64.0)
    request_kib: float = _default("request_kib", 16.0)
    response_kib: float = _default("response_kib", 2.0)
    home_site: int = _default("home_site", 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceService(EdgeServiceConfig):
    rate_ops_s: float = _default("rate_ops_s", 1150.0)
    service_ms: float = _default("service_ms", 30.0)
    service_cv: float = _default("service_cv", 0.3)
    cores: int = _default("cores", 48)
    memory_gib: float = _default("memory_gib", 96.0)
    request_kib: float = _default("request_kib", 64.0)
    response_kib: float = _default("response_kib", 1.0)
    home_site: int = _default("home_site", 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeConfig:
    enabled: bool = spec(False, doc="model request-level edge services (the rest of the scenario runs as before)")
    sites: int = spec(2, min=1, max=10_000, doc="edge sites")
    site_cores: int = spec(64, min=1, max=100_000, doc="cores at each edge site")
    site_memory_gib: float = spec(256.0, min=1.0, max=1e7, doc="memory at each edge site")
    cloud_cores: int = spec(100_000, min=1, max=10_000_000, doc="cores in the cloud region behind the sites")
    cloud_memory_gib: float = spec(1e6, min=1.0, max=1e9, doc="memory in the cloud region")
    user_edge_rtt_ms: float = spec(4.0, min=0.0, max=1e4, doc="round trip from a user to their edge site")
    edge_edge_rtt_ms: float = spec(8.0, min=0.0, max=1e4, doc="round trip between two edge sites")
    edge_cloud_rtt_ms: float = spec(30.0, min=0.0, max=1e4, doc="round trip from an edge site to the cloud")
    user_edge_mbps: float = spec(10_000.0, min=0.001, max=1e7, doc="access bandwidth into an edge site")
    edge_cloud_mbps: float = spec(10_000.0, min=0.001, max=1e7, doc="bandwidth from an edge site to the cloud")
    interval_s: float = spec(10.0, min=0.01, max=86400, doc="aggregation interval: arrivals and queueing per interval")
    site_mtbf_h: float = spec(2000.0, min=0.001, max=1e7, doc="mean time between failures of one edge site")
    site_mttr_h: float = spec(1.0, min=0.0, max=1e5, doc="mean repair time of a failed edge site (exponential)")
    failover_s: float = spec(60.0, min=0.0, max=1e6,
                             doc="after an edge site fails, its services serve from the cloud after this long "
                                 "(detection and restart); negative values are not allowed")
    iot: IotService = section(IotService)
    analytics: AnalyticsService = section(AnalyticsService)
    inference: InferenceService = section(InferenceService)

    def __post_init__(self) -> None:
        for name in SERVICE_CLASSES:
            home = getattr(self, name).home_site
            if home >= self.sites:
                raise ConfigError(f"edge.{name}.home_site = {home} is out of range; allowed: 0 to {self.sites - 1}")

    def services(self) -> tuple[tuple[str, EdgeServiceConfig], ...]:
        """The enabled service classes, by name."""
        return tuple((name, getattr(self, name)) for name in SERVICE_CLASSES if getattr(self, name).enabled)
