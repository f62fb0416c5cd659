"""Scenario settings of the capacity-planning model: fault injection, and the trace formats.

Kept apart from ``scenario.py`` (which composes the sections) so the capacity model's settings
live in one place. Rates are given as MTBF (mean time between failures, per component) and MTTR
(mean time to repair); the distributions are the usual reliability-engineering choices:
exponential inter-failure times (a Poisson failure process, memoryless), and exponential,
lognormal or Weibull repair times (Schroeder & Gibson, "A large-scale study of failures in
high-performance computing systems", DSN 2006, found repair times fit lognormal best).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from novacron.config import spec

TRACE_FORMATS: tuple[str, ...] = (
    "azure-packing-2020", "azure-v1", "azure-v2", "google-2011", "alibaba-2018", "bitbrains",
)
"""Public trace formats the simulator reads as a workload (see ``sim/workloads/traces.py``)."""

RepairDistribution = Literal["exponential", "lognormal", "weibull"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultsConfig:
    enabled: bool = spec(False, doc="inject faults (host, rack, correlated, manager, partition)")
    host_mtbf_h: float = spec(8760.0, min=0.01, max=1e7, doc="mean time between crashes of one host")
    host_mttr_h: float = spec(4.0, min=0.001, max=1e5, doc="mean time to repair a crashed host")
    repair_distribution: RepairDistribution = spec(
        "lognormal", doc="distribution of repair times (exponential, lognormal or weibull)")
    repair_shape: float = spec(1.0, min=0.05, max=20,
                               doc="lognormal sigma, or Weibull shape k, of repair times")
    restart_delay_s: float = spec(60.0, min=0.0, max=86400,
                                  doc="failure detection plus boot: a crashed host's VMs are down this long "
                                      "before they run elsewhere")
    correlated_failure_pct: float = spec(0.0, min=0.0, max=100.0,
                                         doc="chance that a host crash also takes down another host of its rack")
    rack_mtbf_h: float | None = spec(None, min=0.01, max=1e8,
                                     doc="mean time between whole-rack failures (per rack); nothing = never")
    manager_mtbf_h: float | None = spec(None, min=0.01, max=1e8,
                                        doc="mean time between manager crashes (a hook event for Raft)")
    manager_mttr_s: float = spec(30.0, min=0.0, max=1e6, doc="how long a crashed manager stays down")
    managers: int = spec(3, min=1, max=7, doc="manager nodes that crash hooks pick from (manager-1 .. "
                                              "manager-N); with [raft] control_plane = 'raft', at most "
                                              "[raft] managers")
    partition_mtbf_h: float | None = spec(None, min=0.01, max=1e8,
                                          doc="mean time between network partitions (a hook event)")
    partition_duration_s: float = spec(60.0, min=0.0, max=1e6, doc="how long a partition lasts")

