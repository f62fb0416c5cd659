"""Public traces as workloads (filled in with the readers)."""

from __future__ import annotations

from collections.abc import Iterator

from novacron.scenario import Scenario
from sim.workloads import VMSpec


def trace_workload(trace_format: str, path: str, scenario: Scenario) -> Iterator[VMSpec]:
    raise NotImplementedError(trace_format)
