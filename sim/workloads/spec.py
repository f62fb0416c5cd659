"""What a workload streams: VM arrivals (``VMSpec``) and, for some traces, departures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VMSpec:
    """One VM request: when it arrives, how long it lives, its size and its demand profile."""

    vm_id: str
    arrival_s: float
    """Simulated seconds since the start of the run."""
    lifetime_s: float | None
    """``None``: the VM runs until the end of the run."""
    cpu_cores: int
    """vCPUs requested (what placement reserves)."""
    memory_gib: float
    mean_cpu_utilisation: float
    """Mean fraction of its vCPUs the VM uses."""
    diurnal_amplitude: float = 0.0
    """Relative day/night swing of the CPU demand around its mean (0: flat)."""
    diurnal_phase_days: float = 0.0
    burst_probability: float = 0.0
    """Chance per demand update that the VM bursts above its diurnal curve."""
    io_intensity: float = 1.0
    """Network and disk traffic per busy vCPU, relative to the workload's average VM."""


@dataclass(frozen=True, slots=True)
class VMDeparture:
    """A VM leaves at ``at_s``: for traces that record a VM's end as a later row (Google 2011)."""

    vm_id: str
    at_s: float


WorkloadItem = VMSpec | VMDeparture
"""A workload streams arrivals (with or without a known lifetime) and, optionally, departures."""
