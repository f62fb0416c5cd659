"""Synthetic workloads: diurnal, bursty demand and heavy-tailed lifetimes.

Theory of operation
-------------------
VM sizes are drawn uniformly from the scenario's flavours; arrival times uniformly within the
arrival window (sorted, so the stream is in arrival order). Each VM gets a mean CPU utilisation
drawn from a Beta distribution around the workload mean (concentration 8: most VMs near the
mean, a few idle or busy ones, as in Cortez et al., "Resource Central", SOSP 2017, Fig. 3).

Lifetimes are Lomax (Pareto II) distributed with shape ``a`` and the scale chosen so the mean
is ``lifetime_mean_s`` (mean = scale / (a - 1)): a heavy tail, as cloud VM lifetimes show — most
VMs short-lived, most core-hours spent in the long-lived few (Resource Central, Fig. 5).

With ``arrival_diurnal_amplitude`` the arrival *rate* follows the day too (peaking at 6 h, with
the demand), so the number of VMs alive swings and a cluster autoscaler has something to do.

Diurnal demand is a sinusoid with a one-day period; phases cluster around zero (one region's
users share a day), so VM peaks coincide and the cluster peak is higher than the mean — the
case capacity planning must cover. Bursts are drawn per demand update by the cluster model.
Network and disk traffic follow CPU activity, scaled by a per-VM lognormal I/O intensity.

Arrays are drawn in chunks, so a 50,000-VM workload costs a few numpy calls, not 50,000.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from novacron.scenario import Scenario
from sim.workloads.spec import VMSpec

CHUNK = 4096
UTILISATION_CONCENTRATION = 8.0
IO_SIGMA = 0.5
"""Lognormal sigma of VMs' I/O intensity: some VMs move far more bytes per busy core than others."""
DAY_S = 86400.0
PHASE_SPREAD_DAYS = 0.04
"""Standard deviation of VMs' diurnal phase (about an hour): one region's users share a day."""


def lomax_lifetimes_s(rng: np.random.Generator, mean_s: float, shape: float, size: int) -> np.ndarray:
    """Heavy-tailed lifetimes with the given mean: Lomax(shape) scaled by mean * (shape - 1)."""
    return rng.pareto(shape, size=size) * mean_s * (shape - 1.0)


def diurnal_arrivals(uniform_s: np.ndarray, amplitude: float, window_s: float) -> np.ndarray:
    """Uniform arrival times mapped through the inverse of the cumulative arrival rate of
    ``rate(t) = 1 + amplitude * sin(2 pi t / day)`` (time-rescaling of a non-homogeneous Poisson
    process): order is kept, and amplitude 0 leaves the times as drawn."""
    if amplitude == 0.0 or uniform_s.size == 0 or window_s <= 0.0:
        return uniform_s
    grid = np.linspace(0.0, window_s, 4096 + int(window_s // 600))
    cumulative = grid + amplitude * DAY_S / (2 * np.pi) * (1.0 - np.cos(2 * np.pi * grid / DAY_S))
    mapped: np.ndarray = np.interp(uniform_s * cumulative[-1] / window_s, cumulative, grid)
    return mapped


def synthetic_workload(scenario: Scenario, rng: np.random.Generator) -> Iterator[VMSpec]:
    w = scenario.workload
    arrivals = diurnal_arrivals(np.sort(rng.uniform(0.0, w.arrival_window_s, size=w.vms)),
                                w.arrival_diurnal_amplitude, w.arrival_window_s)
    mean = min(max(w.mean_cpu_utilisation, 1e-3), 1 - 1e-3)
    for start in range(0, w.vms, CHUNK):
        n = min(CHUNK, w.vms - start)
        flavours = rng.integers(0, len(w.vm_cpu_cores), size=n)
        utilisation = rng.beta(mean * UTILISATION_CONCENTRATION, (1 - mean) * UTILISATION_CONCENTRATION, size=n)
        phases = rng.normal(0.0, PHASE_SPREAD_DAYS, size=n)
        io = rng.lognormal(-IO_SIGMA**2 / 2, IO_SIGMA, size=n)  # mean 1
        lifetimes = (lomax_lifetimes_s(rng, w.lifetime_mean_s, w.lifetime_shape, n)
                     if w.lifetime_mean_s is not None else None)
        for k in range(n):
            flavour = int(flavours[k])
            yield VMSpec(
                vm_id=f"vm-{start + k:06d}", arrival_s=float(arrivals[start + k]),
                lifetime_s=None if lifetimes is None else float(lifetimes[k]),
                cpu_cores=w.vm_cpu_cores[flavour], memory_gib=w.vm_memory_gib[flavour],
                mean_cpu_utilisation=float(utilisation[k]), diurnal_amplitude=w.diurnal_amplitude,
                diurnal_phase_days=float(phases[k]), burst_probability=w.burst_probability,
                io_intensity=float(io[k]),
            )
