"""Prometheus metrics for any real component that reports events: the real cache first.

``TelemetryExporter`` is an ``EventSink`` in front of the component's own sink: every event goes
on to the sink unchanged and through ``novacron.telemetry.TelemetryReducer``, which keeps the
latest value of each series (a counter's running total, a gauge's last reading). A collector on
the exporter's own registry turns those values into Prometheus families when scraped, so the
metric names, labels and meanings are the ones ``novacron export-metrics`` writes for a simulated
run. The HTTP server is prometheus_client's, in a daemon thread; the latest values are guarded
by a lock because the component emits on its thread while the server reads on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from novacron.events import Event
from novacron.ports import EventSink
from novacron.telemetry import FAMILIES, Labels, TelemetryReducer

E = TypeVar("E", bound=Event)


class MetricsServer:
    """``/metrics`` of ``registry`` on ``host:port`` (port 0: any free port, see ``port``), served by
    prometheus_client in a daemon thread until ``close``."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


class TelemetryExporter(Collector):
    def __init__(self, inner: EventSink) -> None:
        self._inner = inner
        self._reducer = TelemetryReducer()
        self._latest: dict[tuple[str, Labels], float] = {}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._server: MetricsServer | None = None

    def emit(self, cls: type[E], *, source: str, **fields: Any) -> E:
        event = self._inner.emit(cls, source=source, **fields)
        samples = self._reducer.observe(event)
        if samples:
            with self._lock:
                for s in samples:
                    self._latest[(s.family, s.labels)] = s.value
        return event

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            latest = sorted(self._latest.items())
        by_family: dict[str, list[tuple[Labels, float]]] = {}
        for (family, labels), value in latest:
            by_family.setdefault(family, []).append((labels, value))
        for name, series in by_family.items():
            declared = FAMILIES[name]
            label_names = [k for k, _ in series[0][0]]
            metric: GaugeMetricFamily | CounterMetricFamily = (
                CounterMetricFamily(name, declared.help, labels=label_names) if declared.kind == "counter"
                else GaugeMetricFamily(name, declared.help, labels=label_names))
            for labels, value in series:
                metric.add_metric([v for _, v in labels], value)
            yield metric

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port); the port."""
        self._server = MetricsServer(self.registry, host, port)
        return self._server.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
