"""The completed-job statistics libvirt pushes as events, for the migrations that keep none to ask.

Theory of operation. After a post-copy migration libvirt keeps no completed statistics on the
destination, and the source domain, which had them, is removed within 0.1-2 s of QEMU reporting
``completed``. Polling the source through the monitor passthrough raced that removal: during the
Confirm phase the passthrough call waits for libvirt's job lock (1.6 s once, measured) and then
finds the domain gone, so one lab run in three or four left the downtime unmeasured.

libvirt itself emits ``VIR_DOMAIN_EVENT_ID_JOB_COMPLETED`` on the source when the migration job
completes, and for post-copy its parameters are the whole completed statistics: ``downtime`` (and
``downtime_net``), ``time_elapsed``, ``memory_iteration``, ``data_processed``,
``memory_postcopy_requests`` (libvirt 9.0, measured in the lab). An event cannot be missed the
way a poll can: libvirtd queues it to every client that registered a callback.

libvirt delivers events only to connections opened after an event-loop implementation has been
registered in the process, and only while something runs that loop. ``start_event_loop`` does both
once per process (the default implementation, run by one daemon thread); a
``CompletedJobListener`` registered on a connection keeps the last completed job's statistics per
domain name until the migration that wants them takes them.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any

import libvirt


@functools.cache
def start_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread (once per process).
    Connections opened before this call never deliver events."""
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()


def _run_event_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


class CompletedJobListener:
    """Completed-job statistics of the domains of one connection, by domain name."""

    def __init__(self, conn: libvirt.virConnect) -> None:
        self._conn = conn
        self._completed: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._callback_id: int | None = conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job_completed, None)

    def _on_job_completed(self, _conn: libvirt.virConnect, dom: libvirt.virDomain,
                          params: dict[str, Any], _opaque: object) -> None:
        with self._arrived:
            self._completed[str(dom.name())] = dict(params)
            self._arrived.notify_all()

    def forget(self, domain_name: str) -> None:
        """Drop an earlier job's statistics, before a new job on the same domain starts."""
        with self._arrived:
            self._completed.pop(domain_name, None)

    def take(self, domain_name: str, timeout_s: float) -> dict[str, Any] | None:
        """The domain's completed-job statistics, waiting up to ``timeout_s`` for the event; None
        if none came (then the caller's figure stays unmeasured, never a default)."""
        with self._arrived:
            self._arrived.wait_for(lambda: domain_name in self._completed, timeout=timeout_s)
            return self._completed.pop(domain_name, None)

    def close(self) -> None:
        if self._callback_id is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.domainEventDeregisterAny(self._callback_id)
            self._callback_id = None
