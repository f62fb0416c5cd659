"""An injected memory leak for a real manager process (``novacron manager --debug-leak-mib-s``).

The option only arms the leak: it starts when the process receives ``SIGUSR1``, so a supervisor
that restarts the manager with the same command line gets a healthy process back (a leak is a
bug that takes time to show, not a property of the configuration). Once started, the manager
keeps ``mib_per_s`` more memory every second, written through so the pages are resident: the
resident set size (RSS) grows the way a real leak's does, until something restarts the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

MIB = 1 << 20
STEPS_PER_S = 8


class InjectedLeak:
    """Holds ever more memory once ``start`` is called (``arm`` makes ``SIGUSR1`` call it)."""

    def __init__(self, mib_per_s: float) -> None:
        if not mib_per_s > 0:
            raise ValueError(f"--debug-leak-mib-s {mib_per_s}: allowed: a number of MiB per second above 0")
        self.mib_per_s = mib_per_s
        self._held: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def held_bytes(self) -> int:
        return sum(len(chunk) for chunk in self._held)

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGUSR1, self.start)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._grow(), name="injected-leak")

    async def _grow(self) -> None:
        chunk_bytes = max(int(self.mib_per_s * MIB / STEPS_PER_S), 1)
        while True:
            self._held.append(b"\xa5" * chunk_bytes)  # filled, not calloc'd: every page is resident
            await asyncio.sleep(1.0 / STEPS_PER_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._held.clear()
