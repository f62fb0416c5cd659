"""A federated run partitioned by datacenter, synchronised conservatively in windows (issue 22).

Theory of operation
-------------------
Every datacenter is a logical process (``sim.federation.partition.DatacenterProcess``). A
*partition* is a group of them that one worker runs (``PartitionGroup``: a Dask actor on a
cluster, a plain object in this process without one). The layout only says which worker runs
which datacenter; it changes no number of the run.

Synchronisation is conservative and window-based (the synchronous variant of Chandy-Misra-Bryant
used by parallel network simulators): with ``L`` the lookahead -- the smallest one-way WAN delay
between any two datacenters, ``partition.lookahead_s`` -- a window starts at ``T``, the earliest
pending event or message anywhere, and ends at ``T + L``. Every datacenter simulates its events
due in ``[T, T + L)`` independently; a message sent in the window is due at ``T + L`` or later, so
it is queued at its destination before the next window starts. The window is a property of the
scenario (not of the layout), which is what makes the run the same for any layout: each
datacenter sees the same inbound messages at the same window boundaries, queued in the order of
(delivery time, source datacenter, source's message number). Messages between datacenters of one
partition wait for the boundary too and never leave the worker.

The merged log is every partition's events in the total order (``t_s``, the datacenter's index in
the scenario's list, the datacenter's own sequence), renumbered ``seq = 0, 1, ...`` in that order:
its SHA-256 (the streamed log's hash, ``EventLogWriter``) is the run's, whatever the layout.

Layout (``choose_layout``): datacenters are dealt largest expected load first (its users' share of
the requests plus its share of the clusters) to the least loaded partition, ties to the lower
index. More partitions than datacenters are not useful: a datacenter is the unit.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from novacron.app.eventstore import EventLogWriter, table_to_events
from novacron.events import Event
from novacron.federation.config import FederationSection
from novacron.federation.metrics import FederationFold
from novacron.scenario import Scenario
from sim.federation.partition import DatacenterProcess, Envelope, group_arrivals, lookahead_s, partition_problem


class PartitionError(ValueError):
    """The scenario or the layout cannot run partitioned (one line: key, value, what is allowed)."""


def choose_layout(section: FederationSection, partitions: int) -> tuple[tuple[int, ...], ...]:
    """Datacenter indices per partition (at most one partition per datacenter)."""
    n = len(section.datacenters)
    if partitions < 1:
        raise PartitionError(f"--partitions {partitions} is not allowed; allowed: 1 to {n} (one per datacenter)")
    share = list(section.user_share) if section.user_share and sum(section.user_share) > 0 else [1.0] * n
    load = [share[dc] / sum(share) + 1 / n for dc in range(n)]
    groups: list[list[int]] = [[] for _ in range(min(partitions, n))]
    weights = [0.0] * len(groups)
    for dc in sorted(range(n), key=lambda d: (-load[d], d)):
        g = min(range(len(groups)), key=lambda k: (weights[k], k))
        groups[g].append(dc)
        weights[g] += load[dc]
    return tuple(tuple(sorted(g)) for g in groups)


class PartitionGroup:
    """The datacenters one worker runs; ``advance`` runs one window of all of them."""

    def __init__(self, scenario: Scenario, seed: int, datacenters: Sequence[int], log_dir: str,
                 lookahead: float, plant: str | None = None) -> None:
        names = scenario.federation.datacenters
        arrivals = group_arrivals(scenario, seed, datacenters)
        self.processes = {dc: DatacenterProcess(scenario, seed, dc, Path(log_dir) / f"{names[dc]}.parquet",
                                                lookahead_s=lookahead, plant=plant, arrivals=arrivals[dc])
                          for dc in datacenters}
        self.kept: list[Envelope] = []

    def advance(self, end_s: float, inbound: list[Envelope]) -> tuple[list[Envelope], float | None, float]:
        """One window: (messages for other partitions, earliest pending time here, compute seconds)."""
        started = time.perf_counter()
        by_dc: dict[int, list[Envelope]] = {dc: [] for dc in self.processes}
        for envelope in [*self.kept, *inbound]:
            by_dc[envelope.dst_dc].append(envelope)
        sent = [e for dc, process in self.processes.items() for e in process.advance(end_s, by_dc[dc])]
        self.kept = [e for e in sent if e.dst_dc in self.processes]
        pending = [t for t in (p.next_s() for p in self.processes.values()) if t is not None]
        pending += [e.at_s for e in self.kept]
        out = [e for e in sent if e.dst_dc not in self.processes]
        return out, min(pending, default=None), time.perf_counter() - started

    def abort(self) -> None:
        """Remove the partial log partitions (a failed run leaves none behind)."""
        for process in self.processes.values():
            process.abort()

    def close(self) -> tuple[dict[int, str], int]:
        """The log partitions written, and the queue events simulated here."""
        paths = {dc: str(process.close()) for dc, process in self.processes.items()}
        return paths, sum(process.processed for process in self.processes.values())


@dataclass
class PartitionedRun:
    sha256: str
    events: int
    layout: tuple[tuple[int, ...], ...]
    lookahead_s: float
    windows: int = 0
    setup_s: float = 0.0
    """Building every datacenter's model (and the actors), before the first window."""
    wall_s: float = 0.0
    """The windows, from the first to the last (not the setup, not the merge)."""
    merge_s: float = 0.0
    compute_s: list[float] = field(default_factory=list)
    """Per partition: seconds spent simulating (inside ``advance``)."""
    critical_s: float = 0.0
    """Sum over windows of the slowest partition's compute: the wall time with free synchronisation."""
    messages: int = 0
    simulated: int = 0
    """Queue events (ticks, deliveries, calls) simulated over all datacenters."""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def sync_overhead_ms_per_window(self) -> float:
        return (self.wall_s - self.critical_s) / max(self.windows, 1) * 1000


def run_partitioned(scenario: Scenario, seed: int, out_dir: Path, *, partitions: int = 1, client: Any = None,
                    plant: str | None = None) -> PartitionedRun:
    """Run the scenario's federation partitioned by datacenter; ``client`` (a ``distributed.Client``)
    runs each partition as an actor on its cluster, None runs them all in this process."""
    section = scenario.federation
    problem = partition_problem(section)
    if problem is not None:
        raise PartitionError(problem)
    layout = choose_layout(section, partitions)
    lookahead = lookahead_s(section)
    log_dir = (out_dir / "partitions").resolve()  # workers may run in another folder
    log_dir.mkdir(parents=True, exist_ok=True)
    args = [(scenario, seed, group, str(log_dir), lookahead, plant) for group in layout]
    started = time.perf_counter()
    if client is None:
        groups: list[Any] = [PartitionGroup(*a) for a in args]
    else:
        groups = [f.result() for f in [client.submit(PartitionGroup, *a, actor=True) for a in args]]
    run = PartitionedRun("", 0, layout, lookahead, compute_s=[0.0] * len(groups))
    run.setup_s = time.perf_counter() - started
    try:
        _windows(run, groups, scenario.duration_s, client is not None)
    except BaseException:
        for group in groups:
            _result(group.abort(), client is not None)
        raise
    run.wall_s = time.perf_counter() - started - run.setup_s
    closed = [_result(g.close(), client is not None) for g in groups]
    run.simulated = sum(count for _, count in closed)
    by_dc = {dc: Path(path) for found, _ in closed for dc, path in found.items()}
    merging = time.perf_counter()
    run.sha256, run.events, run.metrics = merge_logs([by_dc[dc] for dc in sorted(by_dc)], out_dir / "events.parquet")
    run.merge_s = time.perf_counter() - merging
    return run


def _result(value: Any, remote: bool) -> Any:
    return value.result() if remote else value


def _windows(run: PartitionedRun, groups: list[Any], duration_s: float, remote: bool) -> None:
    owner = {dc: g for g, group in enumerate(run.layout) for dc in group}
    inbound: list[list[Envelope]] = [[] for _ in groups]
    next_s: float | None = 0.0
    while next_s is not None and next_s < duration_s:
        end_s = min(next_s + run.lookahead_s, duration_s)
        calls = [g.advance(end_s, inbound[k]) for k, g in enumerate(groups)]
        results = [_result(c, remote) for c in calls]
        inbound = [[] for _ in groups]
        pending: list[float] = []
        slowest = 0.0
        for k, (out, nxt, compute_s) in enumerate(results):
            run.compute_s[k] += compute_s
            slowest = max(slowest, compute_s)
            run.messages += len(out)
            for envelope in out:
                inbound[owner[envelope.dst_dc]].append(envelope)
                pending.append(envelope.at_s)
            if nxt is not None:
                pending.append(nxt)
        run.critical_s += slowest
        run.windows += 1
        next_s = min(pending, default=None)


def _events_of(path: Path, rank: int) -> Iterator[tuple[float, int, int, Event]]:
    parquet = pq.ParquetFile(path)
    for i in range(parquet.num_row_groups):
        for ev in table_to_events(parquet.read_row_group(i)):
            yield ev.t_s, rank, ev.seq, ev


def merge_logs(paths: Sequence[Path], out: Path) -> tuple[str, int, dict[str, float]]:
    """Merge the partitions (given in the scenario's datacenter order) into one log ordered by
    (t_s, datacenter index, the datacenter's seq), renumbered; returns its hash, length and the
    federation metrics folded over it."""
    writer = EventLogWriter(out)
    fold = FederationFold()
    handlers = fold.handlers()
    streams = [_events_of(path, rank) for rank, path in enumerate(paths)]
    for position, (_, _, _, ev) in enumerate(heapq.merge(*streams, key=lambda item: item[:3])):
        merged = replace(ev, seq=position)
        writer.append(merged)
        handler = handlers.get(type(merged))
        if handler is not None:
            handler(merged)
    writer.close()
    return writer.sha256(), writer.count, fold.result()
