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

CALL = 2
QueueEntry = tuple[float, int, int, object, int]


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
