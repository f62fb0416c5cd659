"""Workloads: the stream of VMs a run requests, synthetic or read from a public trace.

A workload is an iterator of ``VMSpec`` (and ``VMDeparture``) in (roughly) time order. The cluster model pulls one
VM at a time, so a trace is never held in memory whole: readers in ``traces.py`` stream their
files and ``trace_workload`` adapts each format's records to ``VMSpec``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from novacron.scenario import Scenario
from sim.workloads.spec import VMDeparture, VMSpec, WorkloadItem
from sim.workloads.synthetic import synthetic_workload
from sim.workloads.trace_workload import trace_workload


def workload_for(scenario: Scenario, rng: np.random.Generator) -> Iterator[WorkloadItem]:
    """The scenario's workload: a trace when ``workload.trace_format`` is set, else synthetic."""
    w = scenario.workload
    if w.trace_format is not None and w.trace_path is not None:
        return trace_workload(w.trace_format, w.trace_path, scenario)
    return synthetic_workload(scenario, rng)


__all__ = ("VMDeparture", "VMSpec", "WorkloadItem", "workload_for")
