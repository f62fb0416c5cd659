"""Cluster metrics replicated eventually: a state-based CRDT spread by push anti-entropy.

Theory of operation
-------------------
Each cluster owns one entry of the map -- its free capacity, VM count and utilisation -- and
only the owner writes it, bumping a version each time. Merging two maps keeps, per cluster, the
entry with the higher version: the join of a product of totally ordered versions, so merges
commute, associate and are idempotent (Shapiro et al., "Conflict-free Replicated Data Types",
2011), and any order of pushes converges once messages stop being lost. Every gossip round a
cluster refreshes its own entry and pushes its whole map to one peer drawn at random (anti-
entropy as in Demers et al., "Epidemic Algorithms for Replicated Database Maintenance", 1987).

Staleness is measured, not assumed: an entry carries the time its owner wrote it, and a viewer
at time ``now`` sees it ``now - written_s`` old. The global scheduler reads this view, so it
can pick a cluster that has filled up meanwhile; the cluster's own scheduler then refuses and
the request moves on to the next candidate. The federation leader also reads the view as its
failure detector: a datacenter none of whose entries advanced for ``failure_detection_s`` is
declared lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    cluster: int
    datacenter: int
    version: int
    written_s: float
    free_cpu: float
    free_memory_gib: float
    total_cpu: float
    total_memory_gib: float
    vms: int


class MetricsView:
    """One cluster's replica of every cluster's summary."""

    def __init__(self) -> None:
        self.entries: dict[int, ClusterSummary] = {}

    def write(self, summary: ClusterSummary) -> None:
        self.merge([summary])

    def merge(self, summaries: Iterable[ClusterSummary]) -> int:
        """Join another replica's entries into this one; returns how many entries advanced."""
        advanced = 0
        for s in summaries:
            mine = self.entries.get(s.cluster)
            if mine is None or s.version > mine.version:
                self.entries[s.cluster] = s
                advanced += 1
        return advanced

    def snapshot(self) -> tuple[ClusterSummary, ...]:
        return tuple(self.entries[c] for c in sorted(self.entries))

    def staleness_s(self, now_s: float, exclude: int) -> list[float]:
        return [now_s - s.written_s for c, s in sorted(self.entries.items()) if c != exclude]

    def last_heard_s(self, datacenter: int) -> float | None:
        """When the newest entry of any cluster of ``datacenter`` was written, as far as this view knows."""
        times = [s.written_s for s in self.entries.values() if s.datacenter == datacenter]
        return max(times) if times else None
