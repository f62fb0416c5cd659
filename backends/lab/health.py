"""Read a lab guest's serial consoles after a migration and judge its health.

The judgement is pure (``novacron.guest_health``); this module only waits for the destination's
console to show enough alive markers, reading the files each lab host writes in its private
log directory (``LabHost.serial_log``).
"""

from __future__ import annotations

import time

from backends.lab.hosts import LabHost
from novacron.guest_health import GuestHealth, assess_guest


def read_console(host: LabHost, vm_id: str) -> str:
    path = host.serial_log(vm_id)
    return path.read_text(errors="replace") if path.exists() else ""


def check_migrated_guest(source: LabHost, destination: LabHost, vm_id: str, *,
                         min_alive: int = 2, timeout_s: float = 8.0) -> GuestHealth:
    """Wait up to ``timeout_s`` for ``min_alive`` alive markers on the destination, then judge."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = assess_guest(read_console(source, vm_id), read_console(destination, vm_id), min_alive=min_alive)
        if health.healthy or time.monotonic() >= deadline:
            return health
        if health.alive_markers_after >= min_alive:
            return health  # enough markers, yet unhealthy: waiting longer will not help
        time.sleep(0.25)


def wait_guest_ready(host: LabHost, vm_id: str, *, min_alive: int = 1, timeout_s: float = 30.0) -> bool:
    """True once the guest's console on ``host`` shows ``min_alive`` alive markers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_console(host, vm_id).count("NOVACRON-ALIVE") >= min_alive:
            return True
        time.sleep(0.1)
    return False
