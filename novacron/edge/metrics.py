"""Catalogue metrics of the edge services, from their ``EdgeServiceMeasured`` events, and the
per-service table ``novacron run`` prints against the targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.edge.config import SERVICE_CLASSES
from novacron.edge.events import EdgeServiceMeasured, EdgeServicePlaced
from novacron.events import Event
from novacron.slo import RunVerdict
from novacron.streaming import Metrics
from novacron.text_table import text_table

EDGE_STATS: tuple[tuple[str, str, str], ...] = (
    ("latency_p50_ms", "ms", "median request latency (network, queueing and service)"),
    ("latency_p95_ms", "ms", "p95 request latency (network, queueing and service)"),
    ("latency_p99_ms", "ms", "p99 request latency (network, queueing and service)"),
    ("throughput_ops_s", "1/s", "requests served per second over the run"),
    ("uptime_pct", "%", "share of the run the service had somewhere to run"),
    ("requests", "", "requests that arrived over the run"),
    ("shed_pct", "%", "requests shed by admission control (overload) over requests arrived"),
    ("cloud_pct", "%", "requests served from the cloud (placement or failover) over requests served"),
    ("at_edge", "bool", "1 when the scheduler placed the service at an edge site"),
)

EDGE_METRICS: tuple[tuple[str, str, str], ...] = tuple(
    (f"edge.{service}.{stat}", unit, f"{service}: {meaning}")
    for service in SERVICE_CLASSES for stat, unit, meaning in EDGE_STATS)
"""Every edge metric name, with unit and meaning (``novacron.metrics.METRICS`` lists them)."""


class EdgeFold:
    def __init__(self) -> None:
        self.measured: list[EdgeServiceMeasured] = []
        self.placed: dict[str, EdgeServicePlaced] = {}

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {EdgeServiceMeasured: self.measured.append, EdgeServicePlaced: self._placed}

    def _placed(self, ev: EdgeServicePlaced) -> None:
        self.placed[ev.service] = ev

    def result(self) -> Metrics:
        m: Metrics = {}
        for ev in self.measured:
            p = f"edge.{ev.service}."
            m.update({f"{p}latency_p50_ms": ev.response_p50_ms, f"{p}latency_p95_ms": ev.response_p95_ms,
                      f"{p}latency_p99_ms": ev.response_p99_ms, f"{p}throughput_ops_s": ev.throughput_ops_s,
                      f"{p}uptime_pct": ev.uptime_pct, f"{p}requests": ev.requests_arrived,
                      f"{p}cloud_pct": 100.0 * ev.cloud_fraction})
            if ev.requests_arrived > 0:
                m[f"{p}shed_pct"] = 100.0 * ev.requests_shed / ev.requests_arrived
        for service, placed in self.placed.items():
            m[f"edge.{service}.at_edge"] = float(placed.site.startswith("edge-"))
        return {k: v for k, v in m.items() if v == v}  # NaN (nothing served) is not measured


COLUMNS = (("latency_p50_ms", "p50 ms", "{:.2f}"), ("latency_p95_ms", "p95 ms", "{:.2f}"),
           ("latency_p99_ms", "p99 ms", "{:.2f}"), ("throughput_ops_s", "ops/s", "{:.0f}"),
           ("uptime_pct", "uptime %", "{:.3f}"), ("cloud_pct", "cloud %", "{:.1f}"))


def run_service_table(metrics: Mapping[str, float], verdict: RunVerdict) -> str:
    """``service_table`` with each edge target's threshold and verdict from the run's verdict."""
    targets = {r.target.metric: f"{r.target.describe_threshold()} {r.verdict.value}"
               for r in verdict.results if r.target.metric.startswith("edge.")}
    return service_table(metrics, targets)


def service_table(metrics: Mapping[str, float], targets: Mapping[str, str]) -> str:
    """One row per edge service, each cell with its target beside it ('' without edge services).

    ``targets`` maps a metric name to its threshold as text (e.g. '< 10 ms')."""
    services = [s for s in SERVICE_CLASSES if f"edge.{s}.requests" in metrics]
    if not services:
        return ""

    def cell(name: str, fmt: str) -> str:
        value = fmt.format(metrics[name]) if name in metrics else "-"
        target = targets.get(name, "")
        return value + (f" ({target})" if target else "")

    rows = [(service, [cell(f"edge.{service}.{key}", fmt) for key, _, fmt in COLUMNS]) for service in services]
    return text_table("service", 10, [title for _, title, _ in COLUMNS], 20, rows)
