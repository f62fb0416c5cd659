"""Cluster autoscaling policies: how many hosts should be in service, decided every interval.

Theory of operation
-------------------
A policy sees one ``Observation`` per decision interval and answers the number of hosts it
wants in service. The runtime (``sim/autoscaling.py``) turns the answer into actions: a
powered-off host is powered on and joins after the provisioning delay; a host taken out of
service is cordoned (no new VMs), and powered off once its VMs have left. Every policy aims at
the same utilisation ``target_pct`` so that their host-hours compare at a like SLA.

*Need* is the cluster's load in hosts: the larger of the vCPUs reserved over one host's usable
vCPUs and the CPU used over one host's cores, plus the vCPUs of the VMs turned away since the
last decision (Kubernetes' cluster-autoscaler scales out for pending pods in the same way).

- ``static``: a fixed number of hosts (the baseline every cloud starts from).
- ``threshold``: step scaling (AWS EC2 Auto Scaling "step" policies): above ``high_pct``
  utilisation add ``step_pct`` of the hosts (at least one), below ``low_pct`` remove one host,
  at most one removal per ``cooldown_s``.
- ``target``: target tracking as Kubernetes' Horizontal Pod Autoscaler computes it (the HPA
  algorithm in the Kubernetes documentation): ``desired = ceil(current x utilisation / target)``,
  left alone within a 10 % tolerance, and a scale-down stabilisation window: the recommendation
  is the highest of those made over the last ``stabilisation_s``.
- ``predictive``: forecasts the need one lead time ahead (provisioning delay plus an interval)
  with a seasonal-naive forecast (Hyndman and Athanasopoulos, "Forecasting: Principles and
  Practice", 3rd ed., section 5.2) over a one-day season, scaled by the ratio of the last hour's
  level to the same hour a day earlier; like AWS predictive scaling it never goes below what
  target tracking asks now (forecast and dynamic scaling together). Before a day of history it
  is target tracking.
- ``oracle``: knows the future need exactly (the runtime hands it the workload's schedule) and
  holds the highest need of the coming lead time: the bound the others are judged against.

Everything here is arithmetic on the observations; time is the runtime's ``now_s``.
``provisioning_violations`` checks a run's log against the provisioning contract (no host takes
VMs before its delay has passed since power-on, none while cordoned).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from novacron.cluster.autoscale_events import HostServiceChanged
from novacron.cluster.events import VMPlaced
from novacron.config import spec
from novacron.events import Event
from novacron.scheduler.events import HostPowerChanged

AutoscalePolicyName = Literal["off", "static", "threshold", "target", "predictive", "oracle"]
AUTOSCALE_POLICIES: tuple[str, ...] = ("off", "static", "threshold", "target", "predictive", "oracle")
DAY_S = 86400.0
HPA_TOLERANCE = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoscaleConfig:
    policy: AutoscalePolicyName = spec("off", choices=AUTOSCALE_POLICIES,
                                       doc="who decides how many hosts are in service (off = all, always)")
    interval_s: float = spec(300.0, min=1.0, max=86400, doc="time between autoscaling decisions")
    provisioning_delay_s: float = spec(600.0, min=0.0, max=86400,
                                       doc="from powering a host on to it taking VMs (boot, join, checks)")
    initial_hosts: int = spec(4, min=1, max=20_000, doc="hosts in service at the start (static: always)")
    min_hosts: int = spec(1, min=1, max=20_000, doc="fewest hosts any policy keeps in service")
    target_pct: float = spec(70.0, min=5.0, max=100.0, doc="utilisation every policy aims at")
    high_pct: float = spec(85.0, min=1.0, max=100.0, doc="threshold policy: scale out above this utilisation")
    low_pct: float = spec(50.0, min=0.0, max=100.0, doc="threshold policy: scale in below this utilisation")
    step_pct: float = spec(20.0, min=1.0, max=100.0, doc="threshold policy: hosts added per step, in % of current")
    cooldown_s: float = spec(600.0, min=0.0, max=86400, doc="threshold policy: least time between removals")
    stabilisation_s: float = spec(300.0, min=0.0, max=86400,
                                  doc="target policy: scale-down stabilisation window (HPA's default is 300 s)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    now_s: float
    hosts_in_service: int
    hosts_provisioning: int
    vcpus_allocated: float
    vcpus_per_host: float
    """Usable vCPUs of one host (overcommit times cores, less the scheduler's CPU headroom)."""
    cpu_used_cores: float
    cores_per_host: float
    vcpus_rejected: float = 0.0
    """vCPUs of the VMs no host could take since the previous decision."""

    @property
    def need_hosts(self) -> float:
        reserved = (self.vcpus_allocated + self.vcpus_rejected) / max(self.vcpus_per_host, 1e-9)
        return max(reserved, self.cpu_used_cores / max(self.cores_per_host, 1e-9))

    @property
    def capacity_hosts(self) -> int:
        return self.hosts_in_service + self.hosts_provisioning


class AutoscalePolicy(Protocol):
    def desired_hosts(self, obs: Observation) -> int: ...


def hosts_for(need_hosts: float, target_pct: float) -> int:
    return max(1, math.ceil(need_hosts / (target_pct / 100.0) - 1e-9))


@dataclass
class StaticPolicy:
    hosts: int

    def desired_hosts(self, obs: Observation) -> int:
        return self.hosts


@dataclass
class ThresholdPolicy:
    config: AutoscaleConfig
    last_removal_s: float = -math.inf

    def desired_hosts(self, obs: Observation) -> int:
        current = obs.capacity_hosts
        utilisation_pct = 100.0 * obs.need_hosts / max(current, 1)
        if utilisation_pct > self.config.high_pct or obs.vcpus_rejected > 0:
            return current + max(1, math.ceil(current * self.config.step_pct / 100.0))
        if utilisation_pct < self.config.low_pct and obs.now_s - self.last_removal_s >= self.config.cooldown_s:
            self.last_removal_s = obs.now_s
            return current - 1
        return current


@dataclass
class TargetTrackingPolicy:
    config: AutoscaleConfig
    recent: deque[tuple[float, int]] | None = None

    def raw(self, obs: Observation) -> int:
        current = max(obs.capacity_hosts, 1)
        ratio = obs.need_hosts / (current * self.config.target_pct / 100.0)
        if abs(ratio - 1.0) <= HPA_TOLERANCE and obs.vcpus_rejected == 0:
            return current
        return hosts_for(obs.need_hosts, self.config.target_pct)

    def desired_hosts(self, obs: Observation) -> int:
        if self.recent is None:
            self.recent = deque()
        self.recent.append((obs.now_s, self.raw(obs)))
        while self.recent[0][0] < obs.now_s - self.config.stabilisation_s:
            self.recent.popleft()
        return max(hosts for _, hosts in self.recent)


@dataclass
class SeasonalNaiveForecast:
    """Need in hosts, one sample per decision; forecast = the value one season back, scaled by
    the ratio of the last hour's mean to the same hour's mean a season earlier."""

    interval_s: float
    season_s: float = DAY_S
    level_window_s: float = 3600.0
    history: list[float] | None = None

    def observe(self, need_hosts: float) -> None:
        if self.history is None:
            self.history = []
        self.history.append(need_hosts)

    def forecast(self, lead_s: float) -> float | None:
        history = self.history or []
        season = round(self.season_s / self.interval_s)
        lead = max(1, math.ceil(lead_s / self.interval_s))
        window = max(1, round(self.level_window_s / self.interval_s))
        now = len(history) - 1
        if now - season - window + 1 < 0:
            return None
        recent = sum(history[now - window + 1: now + 1]) / window
        before = sum(history[now - season - window + 1: now - season + 1]) / window
        level = recent / before if before > 1e-9 else 1.0
        ahead = history[now - season + 1: min(now - season + lead, now) + 1]
        return level * max(ahead)


@dataclass
class PredictivePolicy:
    config: AutoscaleConfig
    tracking: TargetTrackingPolicy
    model: SeasonalNaiveForecast

    def desired_hosts(self, obs: Observation) -> int:
        self.model.observe(obs.need_hosts)
        dynamic = self.tracking.desired_hosts(obs)
        predicted = self.model.forecast(self.config.provisioning_delay_s + self.config.interval_s)
        if predicted is None:
            return dynamic
        return max(dynamic, hosts_for(predicted, self.config.target_pct))


@dataclass
class OraclePolicy:
    config: AutoscaleConfig
    future_need_hosts: Callable[[float, float], float]
    """The highest need over ``[t0, t1]``, known in advance (the workload's schedule)."""

    def desired_hosts(self, obs: Observation) -> int:
        lead_s = self.config.provisioning_delay_s + self.config.interval_s
        need = max(obs.need_hosts, self.future_need_hosts(obs.now_s, obs.now_s + lead_s))
        return hosts_for(need, self.config.target_pct)


def build_policy(config: AutoscaleConfig, future_need_hosts: Callable[[float, float], float] | None) -> AutoscalePolicy:
    if config.policy == "static" or config.policy == "off":
        return StaticPolicy(config.initial_hosts)
    if config.policy == "threshold":
        return ThresholdPolicy(config)
    if config.policy == "target":
        return TargetTrackingPolicy(config)
    if config.policy == "predictive":
        return PredictivePolicy(config, TargetTrackingPolicy(config), SeasonalNaiveForecast(config.interval_s))
    if future_need_hosts is None:
        raise ValueError("autoscale.policy = 'oracle' needs the future need (the workload's schedule)")
    return OraclePolicy(config, future_need_hosts)


def provisioning_violations(events: Iterable[Event], provisioning_delay_s: float) -> list[str]:
    """What breaks the provisioning contract in a log: a host that joined service sooner than
    ``provisioning_delay_s`` after it was powered on, or a VM placed on a host out of service."""
    powered_on_s: dict[str, float] = {}
    out_of_service: set[str] = set()
    found: list[str] = []
    for ev in events:
        if isinstance(ev, HostPowerChanged) and ev.powered_on:
            powered_on_s[ev.host_id] = ev.t_s
        elif isinstance(ev, HostServiceChanged):
            if not ev.in_service:
                out_of_service.add(ev.host_id)
                continue
            out_of_service.discard(ev.host_id)
            waited_s = ev.t_s - powered_on_s.get(ev.host_id, -math.inf)
            if ev.reason == "provisioned" and waited_s < provisioning_delay_s - 1e-6:
                found.append(f"{ev.host_id} joined {waited_s:.0f} s after power-on at t={ev.t_s:.0f} s "
                             f"(delay {provisioning_delay_s:.0f} s)")
        elif isinstance(ev, VMPlaced) and ev.host_id in out_of_service:
            found.append(f"{ev.vm_id} placed on {ev.host_id} while out of service at t={ev.t_s:.0f} s")
    return found
