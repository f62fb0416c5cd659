"""Prometheus metrics of a real manager: its Raft state, read at scrape time.

A collector on the runtime's own registry (never prometheus_client's global one) reads the Raft
node when Prometheus scrapes, so the Ready loop does no metrics work at all. The HTTP server is
prometheus_client's, in its own daemon thread (``backends.metrics_exporter.MetricsServer``); the
collector reads plain attributes only (the term, the role, the commit and applied indexes), each
a single load under the GIL. The names match the telemetry reducer's (``novacron.telemetry``), so
a dashboard reads a real cluster and an exported simulated run alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from backends.metrics_exporter import MetricsServer
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


def serve_manager_metrics(runtime: ManagerRuntime, host: str, port: int) -> MetricsServer:
    """``/metrics`` for one manager on ``host:port`` (port 0: any free port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ManagerCollector(runtime))
    return MetricsServer(registry, host, port)
