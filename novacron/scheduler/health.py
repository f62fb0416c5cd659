"""Node health in placement: exclude failing hosts, prefer healthy ones, evacuate failing ones.

Theory of operation
-------------------
Each host has a health score of 0-100 (``novacron.health``: connectivity 40, resource pressure
30, reliability 30), computed by the runtime's health monitor from what it observes and written
into a ``HostHealth`` (by the cluster's host numbering, ``HostTable.index``, so a window or a
subset of the host table reads the right scores). It keeps two figures per host: the score, and
its *condition* -- the score less its pressure deficit, i.e. what the host would score idle.
Load is already the business of the headroom filter and the rebalancer; counting it again in an
exclusion made a busy cluster reject VMs and restarts, and evacuations of merely busy hosts
chased each other round the cluster (both measured, ``benchmarks/RESULTS_anomaly.md``). So:

- ``HealthyHost`` (filter): a host whose *condition* is below ``min_score`` (its links or its
  error and crash history, not its load) takes no VM -- as Nova's ComputeFilter leaves out a
  service that stopped reporting, but before it stops. It is *soft*: when no healthy host can
  take a VM, placement over the whole table ignores it (a VM restarted after a host failure
  waited hours for a healthy host with room otherwise, measured), while cache re-checks,
  windows and every rebalancing destination apply it strictly;
- ``HealthPreference`` (scorer): the *score* (load included) between ``min_score`` and 100 maps
  linearly to 0-1, so among feasible hosts a healthier, less pressed one wins unless the other
  scorers disagree more;
- ``plan_evacuation`` (in ``evacuation``, beside the rebalancer it shares its plan with): the
  rebalancer's evacuation wave. The VMs of every host whose condition
  is below ``min_score`` (the sickest host first, then the largest VM first) move to the least
  loaded feasible host -- the scheduler's filters, this one included, so never onto another
  failing host -- within the per-host and global caps and the run's ``MoveAdmission``, as any
  rebalancing move. The ping-pong window does not hold a VM back: it damps balancing, and a VM
  leaving a failing host for a healthy one has no reason to come back. A partial wave is
  finished by the next rounds, as long as the host stays below the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from novacron.health import PRESSURE_POINTS
from novacron.scheduler.policies import ReadsDemandAndGroupsOnly
from novacron.scheduler.state import BoolArray, FloatArray, HostTable, PlacementRequest

FULL_HEALTH = 100.0


@dataclass(frozen=True, slots=True)
class HostHealth:
    """Every host's health score and condition (module docstring), by cluster host index; the
    runtime's health projection writes them with ``record``."""

    scores: FloatArray
    condition: FloatArray

    @classmethod
    def all_healthy(cls, hosts: int) -> HostHealth:
        return cls(np.full(hosts, FULL_HEALTH), np.full(hosts, FULL_HEALTH))

    def record(self, index: int, *, score: float, pressure: float) -> None:
        self.scores[index] = score
        self.condition[index] = score + PRESSURE_POINTS - pressure

    def of(self, hosts: HostTable) -> FloatArray:
        scores: FloatArray = self.scores[hosts.index]
        return scores

    def condition_of(self, hosts: HostTable) -> FloatArray:
        condition: FloatArray = self.condition[hosts.index]
        return condition


@dataclass(frozen=True, slots=True)
class HealthyHost(ReadsDemandAndGroupsOnly):
    health: HostHealth
    min_score: float
    name: str = "healthy_host"
    soft: bool = True
    """It gives way when no healthy host is left for a VM that must run (``Scheduler.feasible``)."""

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        healthy: BoolArray = self.health.condition_of(hosts) >= self.min_score
        return healthy


@dataclass(frozen=True, slots=True)
class HealthPreference:
    health: HostHealth
    min_score: float
    name: str = "health"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        span = max(FULL_HEALTH - self.min_score, 1e-9)
        score: FloatArray = np.clip((self.health.of(hosts) - self.min_score) / span, 0.0, 1.0)
        return score
