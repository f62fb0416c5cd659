"""``DiskThread``: one thread that runs a manager's saves, handed over with less work than an executor.

Theory of operation
-------------------
The runtime saves a leader's Ready (one ``pwrite`` and one ``fdatasync``) in a thread so that
its event loop keeps reading sockets during the fsync. Each hand-over through
``loop.run_in_executor`` costs Python on both sides while the GIL is held -- a
``concurrent.futures`` future with its condition variable, the executor's idle semaphore, and an
asyncio future chained to it -- about 5 % of a leader's samples at 16 synchronous clients
(py-spy), and every GIL-holding step of the disk thread after its fsync is one more chance for the
loop thread to wait for the GIL. Here a job is a tuple on a ``queue.SimpleQueue`` (C, blocks
without the GIL) and the answer is one ``call_soon_threadsafe`` that settles an asyncio future:
after its fsync the thread does that and goes straight back to the queue.

Jobs run one at a time, in order (the store is not thread-safe; the runtime never has two saves
outstanding anyway). ``shutdown`` runs the jobs already queued, then joins the thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DiskThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` in the thread; the returned future (of the running loop) settles with
        its result or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put((loop, future, fn, args))
        return future

    def shutdown(self) -> None:
        """Finish the queued jobs and stop the thread (a no-op if it never started)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, args = job
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting task, which re-raises it
                loop.call_soon_threadsafe(settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(settle, future, result, None)


def settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """On the loop thread: hand the job's outcome to its future (unless the awaiting task gave up)."""
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
