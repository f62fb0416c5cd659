"""First-fit placement: the first host, in host order, with room for the VM.

A deliberately simple placer for the foundation; the scheduler (``novacron.scheduler``) replaces
it in the default scenario. Pure: it reads a snapshot of free capacity and returns a host index.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def first_fit(free_cpu: npt.NDArray[np.float64], free_memory_gib: npt.NDArray[np.float64],
              host_up: npt.NDArray[np.bool_], cpu_cores: float, memory_gib: float) -> int | None:
    """Index of the first up host with at least the VM's CPU and memory free, or None."""
    fits = host_up & (free_cpu >= cpu_cores) & (free_memory_gib >= memory_gib)
    candidates = np.flatnonzero(fits)
    return int(candidates[0]) if candidates.size else None
