"""Drive the core's migration controller against a real hypervisor, on the monotonic clock.

Theory of operation
-------------------
The controller (``novacron.migration.controller``) is sans-I/O: it turns observations into
commands. In simulation SimPy's clock advances between polls; here the driver sleeps for the
controller's ``poll_interval_s`` and reads time from ``time.monotonic``, relative to the run's
start, so the events carry run-relative ``t_s`` exactly like a simulated run's. The loop is the
one ``novacron.migration`` documents (``drive_step``): perform the commands, poll
``job_stats``, let the controller react. A hard wall-clock deadline aborts a migration that the
controller's own completion timeout did not end (QEMU never gives up by itself), and an
``on_poll`` hook lets tests inject faults (kill the destination host) at a chosen point.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backends.clock import MonotonicClock
from novacron.migration.controller import MigrationController, drive_step
from novacron.migration.protocol import AbortMigration, JobStats, MigrationCommand
from novacron.ports import Hypervisor

PollHook = Callable[[MigrationController, JobStats], None]


def drive_migration(controller: MigrationController, hypervisor: Hypervisor, clock: MonotonicClock, *,
                    deadline_s: float = 300.0, on_poll: PollHook | None = None) -> None:
    """Run one admitted-or-requested migration until its copy ends: to a terminal phase, or to
    ``committing`` for a controller that ``awaits_commit`` (the caller then reports the control
    plane's decision with ``controller.commit_decided``)."""
    controller.admitted(clock.now_s())
    started_s = clock.now_s()
    commands: list[MigrationCommand] = controller.start(started_s)
    aborted_for_deadline = False
    while True:
        commands = drive_step(controller, hypervisor, commands, clock.now_s())
        if controller.copy_ended:
            break
        if on_poll is not None and controller.last_stats is not None:
            on_poll(controller, controller.last_stats)
        if not aborted_for_deadline and clock.now_s() - started_s > deadline_s:
            aborted_for_deadline = True
            commands.append(AbortMigration(vm_id=controller.vm_id, reason=f"driver deadline {deadline_s:g} s"))
        time.sleep(controller.poll_interval_s)
