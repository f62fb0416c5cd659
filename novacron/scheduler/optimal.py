"""Offline optimum for small placement instances, to measure how far the online heuristics are.

Theory of operation
-------------------
Placement with headroom and anti-affinity, minimising the hosts used, is vector bin packing with
conflicts, NP-hard; for small instances (tens of VMs) the CP-SAT solver of Google OR-Tools
proves the optimum or gives a bound. The model is the textbook one (Martello and Toth 1990):
``x[v, h]`` = VM v on host h, ``y[h]`` = host h used; every VM on exactly one host; on every host
and resource, demand <= usable capacity (capacity minus headroom) when used; at most one member
of an anti-affinity group per host; identical hosts are used in order (``y[h] >= y[h+1]``) to
break symmetry; minimise the sum of ``y``. Amounts are scaled to integers, demands rounded up
and capacities down, so a solution is always feasible for the real numbers.

The solver runs single-threaded with a *deterministic* time budget (CP-SAT's
``max_deterministic_time``), so the same instance gives the same answer on any machine. Needs
the ``opt`` extra (``ortools``); imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from novacron.scheduler.state import FloatArray, PlacementRequest

SCALE = 1000


@dataclass(frozen=True, slots=True)
class OptimalPlacement:
    hosts_used: int
    proven_optimal: bool
    best_bound: int
    """The solver's lower bound on hosts (equals ``hosts_used`` when proven optimal)."""
    rows: tuple[int, ...]
    """The host row of each request, in request order."""


def solve_min_hosts(requests: Sequence[PlacementRequest], usable: FloatArray, *,
                    deterministic_time_s: float = 10.0) -> OptimalPlacement | None:
    """The fewest hosts (columns of ``usable``, shape ``(4, hosts)``) that take every request.

    None when the instance has no solution within the budget.
    """
    from ortools.sat.python import cp_model

    hosts = usable.shape[1]
    demand = np.array([r.demand for r in requests])
    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{v}_{h}") for h in range(hosts)] for v in range(len(requests))]
    y = [model.new_bool_var(f"y{h}") for h in range(hosts)]
    for v in range(len(requests)):
        model.add_exactly_one(x[v])
    for h in range(hosts):
        for r in range(usable.shape[0]):
            weights = [math.ceil(demand[v, r] * SCALE) for v in range(len(requests))]
            cap = math.floor(usable[r, h] * SCALE)
            model.add(sum(w * x[v][h] for v, w in enumerate(weights) if w) <= cap * y[h])
    groups: dict[str, list[int]] = {}
    for v, req in enumerate(requests):
        if req.anti_affinity_group is not None:
            groups.setdefault(req.anti_affinity_group, []).append(v)
    for members in groups.values():
        for h in range(hosts):
            model.add_at_most_one(x[v][h] for v in members)
    for h in range(hosts - 1):
        if np.array_equal(usable[:, h], usable[:, h + 1]):
            model.add(y[h] >= y[h + 1])
    model.minimize(sum(y))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = deterministic_time_s
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    rows = tuple(next(h for h in range(hosts) if solver.boolean_value(x[v][h])) for v in range(len(requests)))
    return OptimalPlacement(hosts_used=round(solver.objective_value), proven_optimal=status == cp_model.OPTIMAL,
                            best_bound=math.ceil(solver.best_objective_bound - 1e-9), rows=rows)
