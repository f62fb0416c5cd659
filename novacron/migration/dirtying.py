"""How much of a working set a guest's random writes dirty: one formula for every migration model.

Theory of operation
-------------------
A workload that writes ``k`` pages uniformly at random into a working set of ``W`` pages touches
each page with probability ``1 - (1 - 1/W)^k ~ 1 - exp(-k / W)``, so the expected number of
distinct pages dirtied is ``W (1 - exp(-k / W))``: about ``k`` while ``k`` is small against ``W``
(few pages are hit twice), approaching ``W`` as writes pile up. A linear ``min(W, k)`` overstates
the dirty set in between: measured on the real container migration (application-level pre-copy,
random writes, ``benchmarks/RESULTS_lab.md``), the rounds settled at 4.3 MiB of an 8 MiB working
set where ``min`` said 8 MiB, and this formula said within 4 %.

The formula is unit-free: pages in, pages out, or MiB in, MiB out. The QEMU model
(``sim.migration.qemu_model``), the planner (``planner``) and the model of migrations between
workload kinds (``kinds``) all use it.
"""

from __future__ import annotations

import math


def distinct_touched(working_set: float, writes: float) -> float:
    """Expected distinct units of ``working_set`` hit by ``writes`` uniform random writes."""
    return working_set * -math.expm1(-writes / working_set) if working_set > 0 else 0.0
