"""Workloads: the stream of VMs a run requests, synthetic or read from a public trace.

A workload is an iterator of ``VMSpec`` (and ``VMDeparture``) in (roughly) time order. The cluster model pulls one
VM at a time, so a trace is never held in memory whole: readers in ``traces.py`` stream their
files and ``trace_workload`` adapts each format's records to ``VMSpec``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from novacron.scenario import Scenario


@dataclass(frozen=True, slots=True)
class VMSpec:
    """One VM request: when it arrives, how long it lives, its size and its demand profile."""

    vm_id: str
    arrival_s: float
    lifetime_s: float | None
    """``None``: the VM runs until the end of the run."""
    cpu_cores: int
    memory_gib: float
    mean_cpu_utilisation: float
    """Mean fraction of its vCPUs the VM uses."""
    diurnal_amplitude: float = 0.0
    diurnal_phase_days: float = 0.0
    burst_probability: float = 0.0
    io_intensity: float = 1.0
    """Network and disk traffic per busy vCPU, relative to the workload's average VM."""


@dataclass(frozen=True, slots=True)
class VMDeparture:
    """A VM leaves at ``at_s``: for traces that record a VM's end as a later row (Google 2011)."""

    vm_id: str
    at_s: float


WorkloadItem = VMSpec | VMDeparture
"""A workload streams arrivals (with or without a known lifetime) and, optionally, departures."""


def workload_for(scenario: Scenario, rng: np.random.Generator) -> Iterator[WorkloadItem]:
    """The scenario's workload: a trace when ``workload.trace_format`` is set, else synthetic."""
    from sim.workloads.synthetic import synthetic_workload

    w = scenario.workload
    if w.trace_format is not None and w.trace_path is not None:
        from sim.workloads.trace_workload import trace_workload

        return trace_workload(w.trace_format, w.trace_path, scenario)
    return synthetic_workload(scenario, rng)


__all__ = ["VMDeparture", "VMSpec", "WorkloadItem", "workload_for"]
