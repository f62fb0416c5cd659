"""Raft benchmarks: the paper's Figure 16 in simulation, and core message throughput.

Run with::

    PYTHONPATH=. /work/venv/bin/python -m pytest benchmarks/bench_raft.py --benchmark-enable \
        -p no:cacheprovider -o testpaths=benchmarks -o python_files='bench_*.py'

The full Figure 16 (1000 trials per range, with the CDF plot) is a command:
``novacron raft-fig16 --trials 1000 --out runs/raft-fig16``.
"""

from __future__ import annotations

from collections import deque
from random import Random
from typing import Any

import msgpack
import pytest

from novacron.raft.messages import Message, from_wire, to_wire
from novacron.raft.node import LEADER, RaftConfig, RaftNode, Stored
from sim.network import PROFILES
from sim.raft.experiments import election_times_after_crash, fig16, lan_settings, percentile

PROPOSALS = 2000


def _cluster(size: int) -> dict[int, RaftNode]:
    voters = tuple(range(1, size + 1))
    return {i: RaftNode(RaftConfig(node_id=i), Random(i), Stored.bootstrap(voters)) for i in voters}


def _pump(nodes: dict[int, RaftNode], queue: deque[Message]) -> int:
    """Deliver every message directly (no network model): the core's own cost only."""
    stepped = 0
    for node in nodes.values():
        if node.has_ready():
            ready = node.ready()
            queue.extend(ready.messages)
            node.advance(ready)
    while queue:
        m = queue.popleft()
        node = nodes[m.dst]
        node.step(m)
        stepped += 1
        if node.has_ready():
            ready = node.ready()
            queue.extend(ready.messages)
            node.advance(ready)
    return stepped


def replicate(size: int, proposals: int) -> int:
    nodes = _cluster(size)
    queue: deque[Message] = deque()
    nodes[1].campaign()
    _pump(nodes, queue)
    leader = nodes[1]
    assert leader.role == LEADER
    stepped = 0
    for k in range(proposals):
        leader.propose(b"cmd-%d" % k)
        stepped += _pump(nodes, queue)
        if k % 10 == 0:
            for node in nodes.values():
                node.tick()
            stepped += _pump(nodes, queue)
    assert all(n.log.committed == leader.log.committed > proposals for n in nodes.values())
    return stepped


@pytest.mark.benchmark(group="raft-core")
@pytest.mark.parametrize("size", [3, 5])
def test_core_messages_per_second(benchmark: Any, size: int) -> None:
    stepped = benchmark.pedantic(replicate, args=(size, PROPOSALS), rounds=3, iterations=1)
    benchmark.extra_info["messages_stepped"] = stepped
    benchmark.extra_info["messages_per_s"] = stepped / benchmark.stats.stats.mean
    benchmark.extra_info["baseline"] = "test_baseline_msgpack_round_trip_of_the_same_messages"


@pytest.mark.benchmark(group="raft-core")
def test_baseline_msgpack_round_trip_of_the_same_messages(benchmark: Any) -> None:
    """What a TCP runtime adds per message: serialise and parse (the ratio to the core's step)."""
    nodes = _cluster(3)
    nodes[1].campaign()
    sample: list[Message] = []
    queue: deque[Message] = deque()
    for node in nodes.values():
        ready = node.ready()
        sample.extend(ready.messages)
        node.advance(ready)
    nodes[1].propose(b"cmd-1")
    sample.extend(nodes[1].ready().messages)
    messages = sample * (PROPOSALS * 4 // max(1, len(sample)))
    del queue

    def round_trip() -> int:
        for m in messages:
            from_wire(msgpack.unpackb(msgpack.packb(to_wire(m))))
        return len(messages)

    count = benchmark.pedantic(round_trip, rounds=3, iterations=1)
    benchmark.extra_info["messages_per_s"] = count / benchmark.stats.stats.mean


@pytest.mark.benchmark(group="raft-fig16")
def test_figure_16_election_after_leader_crash(benchmark: Any) -> None:
    """Figure 16 with 100 trials per range (the command runs 1000); shape asserted, numbers recorded."""
    results = benchmark.pedantic(fig16, args=(100, 1), rounds=1, iterations=1)
    for label, times in results.items():
        benchmark.extra_info[f"{label}_p50_ms"] = percentile(times, 50)
        benchmark.extra_info[f"{label}_p99_ms"] = percentile(times, 99)
        benchmark.extra_info[f"{label}_within_500ms_pct"] = sum(t < 500 for t in times) / len(times) * 100
    assert benchmark.extra_info["150-300ms_within_500ms_pct"] >= 95
    assert benchmark.extra_info["150-150ms_p99_ms"] > 3 * benchmark.extra_info["150-300ms_p99_ms"]


@pytest.mark.benchmark(group="raft-lan")
def test_lan_election_after_leader_crash(benchmark: Any) -> None:
    times = benchmark.pedantic(election_times_after_crash, args=(lan_settings(5), PROFILES["lan"], 1000, 7),
                               rounds=1, iterations=1)
    benchmark.extra_info["p50_ms"] = percentile(times, 50)
    benchmark.extra_info["p99_ms"] = percentile(times, 99)
    assert percentile(times, 50) < 400 and percentile(times, 99) < 1000
