"""The discrete-event loop the consensus simulators share (``sim.raft.cluster``, ``sim.bft.cluster``).

Theory of operation
-------------------
Time is a float in seconds and the queue a binary heap of ``(time, seq, kind, payload, tag)``;
``seq`` breaks ties in insertion order, so a run is a pure function of its inputs (and of its
seed, for the drivers that draw). ``kind`` says what an entry is to the driver (a tick, a
delivery; ``CALL`` is a scheduled function), ``tag`` is the driver's (e.g. an incarnation that
makes a crashed node's queued ticks void). Subclasses implement ``_dispatch``. These run outside
SimPy for speed: the vops run tens of thousands of clusters.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Protocol

CALL = 2
QueueEntry = tuple[float, int, int, object, int]


class ClockedNode(Protocol):
    """What the queue needs of a simulated process to tick it: its incarnation (a restart makes
    its earlier ticks void), its clock rate and the end of a pause (a stopped process)."""

    incarnation: int
    clock_rate: float
    paused_until_s: float

    def paused(self, now_s: float) -> bool: ...


class EventQueue:
    def __init__(self) -> None:
        self.now_s = 0.0
        self._queue: list[QueueEntry] = []
        self._seq = 0

    def schedule(self, at_s: float, action: Callable[[], None]) -> None:
        self._push(at_s, CALL, action, 0)

    def _push(self, at_s: float, kind: int, payload: object, tag: int) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_s, self._seq, kind, payload, tag))

    def deferred_while_paused(self, node: ClockedNode, kind: int, payload: object, tag: int) -> bool:
        """If ``node`` is paused, queue this entry again for when the pause ends and return True:
        a paused process handles nothing, and what reaches it meanwhile waits."""
        if not node.paused(self.now_s):
            return False
        self._push(node.paused_until_s, kind, payload, tag)
        return True

    def tick_fires(self, node: ClockedNode, kind: int, payload: object, tag: int, tick_s: float) -> bool:
        """Whether a queued tick of a live ``node`` fires now; if it does, its next tick is queued
        first, ``tick_s`` later on the node's own clock. A tick of an earlier incarnation is dropped
        (the caller drops a crashed node's); a paused node's tick waits for the pause to end."""
        if node.incarnation != tag:
            return False
        if self.deferred_while_paused(node, kind, payload, tag):
            return False
        self._push(self.now_s + tick_s / node.clock_rate, kind, payload, tag)
        return True

    def next_time_s(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def run_until(self, until_s: float, stop: Callable[[], bool] | None = None) -> bool:
        """Process events up to ``until_s``; returns True if ``stop()`` became true first."""
        queue = self._queue
        while queue and queue[0][0] <= until_s:
            at_s, _, kind, payload, tag = heapq.heappop(queue)
            self.now_s = at_s
            self._dispatch(kind, payload, tag)
            if stop is not None and stop():
                return True
        self.now_s = max(self.now_s, until_s)
        return False

    def _dispatch(self, kind: int, payload: object, tag: int) -> None:
        raise NotImplementedError
