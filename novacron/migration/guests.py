"""A guest's memory workload, drawn from the ``[migration]`` section.

Both runtimes draw every VM's workload with this function from the same random stream, in
placement order, so a simulated VM and its real guest get the same working set and dirty rate:
the dirty rate log-uniformly in ``dirty_rate_pages_s`` (rates span orders of magnitude), the
writable working set uniformly in ``wws_fraction`` of memory (whole pages), and the other
non-zero memory so that ``nonzero_fraction`` of memory holds data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from novacron.migration.config import MigrationConfig
from novacron.migration.protocol import PAGE_SIZE_BYTES


@dataclass(frozen=True, slots=True)
class GuestWorkload:
    memory_bytes: int
    resident_bytes: int
    wws_bytes: int
    dirty_rate_pages_s: float


def draw_guest_workload(rng: np.random.Generator, cfg: MigrationConfig, memory_bytes: int) -> GuestWorkload:
    low, high = cfg.dirty_rate_pages_s
    rate = float(math.exp(rng.uniform(math.log(max(low, 1.0)), math.log(max(high, 1.0)))))
    wws = int(rng.uniform(cfg.wws_fraction[0], cfg.wws_fraction[1]) * memory_bytes) // PAGE_SIZE_BYTES * PAGE_SIZE_BYTES
    resident = max(int(cfg.nonzero_fraction * memory_bytes) - wws, 0)
    return GuestWorkload(memory_bytes=memory_bytes, resident_bytes=resident, wws_bytes=wws, dirty_rate_pages_s=rate)
