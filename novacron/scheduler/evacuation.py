"""The rebalancer's evacuation wave: move VMs off hosts whose health condition is failing.

Theory of operation
-------------------
See ``novacron.scheduler.health`` for the score and the condition. The VMs of every host whose
condition is below ``min_score`` (the sickest host first, then the largest VM first) move to the
least loaded feasible host -- the scheduler's filters, ``HealthyHost`` included, so never onto
another failing host -- within the per-host and global caps and the run's ``MoveAdmission``, as
any rebalancing move (``rebalance._Plan``). The ping-pong window does not hold a VM back: it damps
balancing, and a VM leaving a failing host for a healthy one has no reason to come back. A partial
wave is finished by the next rounds, as long as the host stays below the threshold.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from novacron.scheduler.admission import MoveAdmission
from novacron.scheduler.framework import Scheduler
from novacron.scheduler.health import HostHealth
from novacron.scheduler.rebalance import (
    PlacedVM,
    Placements,
    RebalanceConfig,
    RebalancePlan,
    _Plan,
    active_hosts,
    host_load_pct,
    imbalance_pct,
)
from novacron.scheduler.state import CPU, MEMORY, HostTable


def unhealthy_rows(hosts: HostTable, health: HostHealth, min_score: float) -> list[int]:
    """Rows of active hosts whose condition is below ``min_score``, the sickest first."""
    scores = health.condition_of(hosts)
    sick = np.flatnonzero((scores < min_score) & active_hosts(hosts))
    return [int(r) for r in sick[np.argsort(scores[sick], kind="stable")]]


def plan_evacuation(hosts: HostTable, vms: Sequence[PlacedVM] | Placements, scheduler: Scheduler,
                    admission: MoveAdmission, *, health: HostHealth, min_score: float, config: RebalanceConfig,
                    now_s: float, excluded: Collection[str] = frozenset(),
                    last_moved_s: Mapping[str, float] | None = None) -> RebalancePlan:
    """One wave of moves off the hosts scoring below ``min_score`` (module docstring)."""
    placements = vms if isinstance(vms, Placements) else Placements(vms)
    before = imbalance_pct(hosts)
    sick = unhealthy_rows(hosts, health, min_score)
    plan = _Plan(hosts.copy(), placements, config, admission, excluded, last_moved_s or {}, now_s)
    for donor in sick:
        for vm in sorted(plan.on_row(donor), key=_largest_first):
            if plan.full():
                break
            vm_id = vm.request.vm_id
            if vm_id in plan.excluded or vm_id in plan.unmovable or not plan.slots_free()[donor]:
                continue
            destination = _least_loaded_destination(plan, scheduler, vm)
            if destination is not None:
                plan.admit(vm, destination)
    return RebalancePlan("evacuate", tuple(plan.moves), before, imbalance_pct(plan.hosts))


def _largest_first(vm: PlacedVM) -> tuple[float, float, str]:
    return -vm.request.demand[MEMORY], -vm.request.demand[CPU], vm.request.vm_id


def _least_loaded_destination(plan: _Plan, scheduler: Scheduler, vm: PlacedVM) -> int | None:
    mask, _ = scheduler.feasible(plan.hosts, vm.request)
    mask &= active_hosts(plan.hosts) & plan.slots_free()
    mask[vm.row] = False
    if not mask.any():
        return None
    load = np.where(mask, host_load_pct(plan.hosts), np.inf)
    return int(np.argmin(load))
