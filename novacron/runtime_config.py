"""The ``[runtime]`` scenario section: what only the real runtime reads.

A simulated run ignores it. The real runtime (``novacron run SCENARIO --runtime real``) runs the
scenario's schedule on the wall clock: scenario time ``t`` happens ``t / time_scale`` seconds
after the start, so a scenario of simulated hours can be played in real minutes. Only the
schedule is compressed (when VMs arrive, when the batch, the leader kill and the Redis restart
happen, when the run ends); what the hardware measures -- a migration's total time and
downtime, a failover, a cache latency -- is real time and is never scaled. Events carry wall
seconds since the run's start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from novacron.config import ConfigError, spec

LIBVIRT_URI = re.compile(r"[a-z][a-z0-9]*(\+[a-z0-9]+)?://[^/\s]*/\S*")
"""``driver[+transport]://[user@][host][:port]/[path][?params]``, as libvirt's URI docs spell it."""


def check_libvirt_uris(field: str, uris: tuple[str, ...] | list[str]) -> None:
    """The one rule for host URIs (``[runtime] hosts``, ``--hosts``): a one-line ``ConfigError`` for the
    first that is not a libvirt URI, before the real runtime builds or connects to anything."""
    for uri in uris:
        if not LIBVIRT_URI.fullmatch(uri):
            raise ConfigError(f"{field} {uri!r} is not a libvirt URI; allowed: "
                              "driver[+transport]://[user@][host]/path, e.g. qemu:///system or "
                              "qemu+ssh://root@host-a/system")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeSection:
    hosts: tuple[str, ...] = spec([], doc="real runtime: libvirt URIs of the hosts, one per [cluster] host "
                                          "(empty: the libvirt lab's two hosts; --hosts overrides)")
    time_scale: float = spec(1.0, min=0.001, max=1e6,
                             doc="real runtime: scenario seconds per wall-clock second (the schedule is "
                                 "compressed, measured durations are not)")
    max_guests: int = spec(6, min=0, max=1000,
                           doc="real runtime: the most guests it boots (refuses a scenario asking more)")

    def __post_init__(self) -> None:
        check_libvirt_uris("runtime.hosts:", self.hosts)
