"""Prometheus metrics of a real manager: its Raft state, read at scrape time.

A collector on the runtime's own registry (never prometheus_client's global one) reads the Raft
node when Prometheus scrapes, so the Ready loop does no metrics work at all. The HTTP server is
prometheus_client's, in its own daemon thread; it reads plain attributes only (the term, the role,
the commit and applied indexes), each a single load under the GIL. The names match the telemetry
reducer's (``novacron.telemetry``), so a dashboard reads a real cluster and an exported
simulated run alike.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from novacron.raft.node import LEADER

if TYPE_CHECKING:
    from backends.manager.runtime import ManagerRuntime


class ManagerCollector(Collector):
    def __init__(self, runtime: ManagerRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        node = self._runtime.node
        manager = [str(self._runtime.id)]
        for name, text, value in (
            ("novacron_raft_term", "the term this manager is in", node.term),
            ("novacron_raft_is_leader", "1 while this manager is the leader", 1 if node.role == LEADER else 0),
            ("novacron_raft_commit_index", "the highest log index known committed", node.log.committed),
            ("novacron_raft_applied_index", "the highest log index applied to the state machine", node.log.applied),
        ):
            family = GaugeMetricFamily(name, text, labels=["manager"])
            family.add_metric(manager, float(value))
            yield family


class MetricsServer:
    """``/metrics`` for one manager on ``host:port`` (port 0: any free port, see ``port``)."""

    def __init__(self, runtime: ManagerRuntime, host: str, port: int) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ManagerCollector(runtime))
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
