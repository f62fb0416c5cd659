"""Loopback ports for the private services NovaCron and its tests start (managers, Redis, sshd).

Theory of operation: a port handed out by ``bind(("127.0.0.1", 0))`` comes from the kernel's
*ephemeral* range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 on Debian), the same
range every outgoing connection takes its local port from. Between the moment a port is chosen and
the moment the service binds it, any client connecting anywhere may be given that very port, and
the service then fails with "Address already in use" (a CI run lost a Redis Cluster start this way
with 18 ports chosen up front). So ports are drawn at random from *below* the ephemeral range,
where the kernel never hands out a port on its own; each is checked bindable, and a process never
hands out the same port twice. Two processes drawing at the same time collide only if they draw
the same port of about 20,000 and both check it before either binds.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOWEST_PORT = 10_000
"""Below this are the well-known ports and the registered ports most often in use on a host."""
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32_768
"""Linux's default lower bound, used where the range cannot be read."""

_handed_out: set[int] = set()
_lock = threading.Lock()
_rng = random.SystemRandom()  # the OS's entropy: a forked process does not repeat its parent's draws


def ephemeral_low() -> int:
    """The lowest port the kernel picks for ephemeral binds and outgoing connections."""
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports on ``host`` that are free now, outside the ephemeral range and
    never handed out before by this process."""
    low = LOWEST_PORT
    high = ephemeral_low() - 1
    if high - low < 1_000:  # an ephemeral range reaching down near 10000: only the kernel's choice is left
        return _kernel_ports(count, host)  # (the race described above comes back with it)
    chosen: list[int] = []
    with _lock:
        for _attempt in range(50 * count + 100):
            if len(chosen) == count:
                break
            port = _rng.randint(low, high)
            if port in _handed_out or not _bindable(host, port):
                continue
            _handed_out.add(port)
            chosen.append(port)
    if len(chosen) < count:
        raise RuntimeError(f"found only {len(chosen)} of {count} free ports in {low}-{high} on {host}")
    return chosen


def free_port(host: str = "127.0.0.1") -> int:
    """One port, as :func:`free_ports`."""
    (port,) = free_ports(1, host)
    return port


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_ports(count: int, host: str) -> list[int]:
    """Ports the kernel hands out, all held open until all are chosen (so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()
