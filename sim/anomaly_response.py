"""The detector in the loop: telemetry -> streaming detectors -> ``AnomalyDetected`` -> actions.

Theory of operation
-------------------
``AnomalyMonitor`` follows the log (a subscription per sample event) through its own
``TelemetryReducer`` -- the fold ``export-metrics`` uses -- and feeds every sample of a watched
family (``WATCHED``: family -> the fault kind it points to) to the detector of that series, one
per (family, labels), built from a ``DetectorSpec`` (``novacron.anomaly.registry``; its period
one day of samples). A series starts *firing* when its score has been above ``alarm_score`` for
``for_samples`` samples in a row (Prometheus' ``for:``: a single-sample burst of contention is
not an incident) and stops when the score falls to ``resolve_score`` or below (hysteresis: a
score hovering at the threshold is one incident, not many). When a series starts firing -- edge-triggered, as a
Prometheus alert goes from inactive to firing: one alert per incident, not one per sample while
a level stays shifted -- the monitor records ``AnomalyDetected``, except

- during the first ``learn_s`` (a day and a half: a daily-seasonal detector has nothing to
  compare with for a day, and then needs to see its series' usual surprises), and
- while the subject is in maintenance (``Responder.in_maintenance``: an action on it, or a
  drain's move onto it, is in progress or ended less than ``maintenance_s`` ago): an action's own
  effect -- a drained host's memory falling to nothing, the host that took its VMs filling up --
  is not news.

The detectors learn every point, those included.

``Responder`` subscribes to ``AnomalyDetected`` and acts, one action per subject at a time; an
alert about a subject already being acted on is dropped:

- ``memory_leak`` -> restart the host's VM whose memory grew most (``FaultInjector.restart_vm``);
- ``noisy_neighbour`` -> throttle the host's VM that uses the most CPU (a cgroup quota);
- ``degraded_nic``, ``slow_disk`` -> drain the host: its VMs move one at a time through the run's
  migration service (claim a destination, copy with the QEMU model, commit through the control
  plane), each to the up host with the least CPU demand (at the last sample, plus what the drain
  already moved there) that can take it and is not being drained: the host with the most room
  *reserved* may be the busiest, and piling VMs on it makes the contention a noisy neighbour does.
  The moves skip the admission queue: a drain runs one move per host, under the global cap;
- ``flapping_manager`` -> replace the manager (``FaultInjector.replace_manager``).

Each action is recorded as ``RemediationStarted`` ... ``RemediationFinished`` with its outcome. A
false alarm is acted on like a true one: that is what a false positive costs.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from types import MappingProxyType

import numpy as np
import simpy

from novacron.anomaly.detectors import Detector
from novacron.anomaly.events import (
    AnomalyDetected,
    HostDevicesSampled,
    ManagerHeartbeatsSampled,
    RemediationFinished,
    RemediationStarted,
)
from novacron.anomaly.registry import DetectorSpec
from novacron.cluster.events import HostUtilisationSampled
from novacron.events import Event
from novacron.telemetry import Labels, TelemetryReducer
from sim.cluster_model import ClusterModel
from sim.context import SimContext
from sim.injected_faults import FaultInjector

WATCHED: Mapping[str, str] = MappingProxyType({
    "novacron_host_memory_used_percent": "memory_leak",
    "novacron_host_cpu_ready_percent": "noisy_neighbour",
    "novacron_host_nic_retransmit_percent": "degraded_nic",
    "novacron_host_disk_latency_ms": "slow_disk",
    "novacron_manager_heartbeat_loss_percent": "flapping_manager",
})
"""The series the monitor watches, and the fault kind an alert on each points to."""
ACTIONS: Mapping[str, str] = MappingProxyType({
    "memory_leak": "restart_vm", "noisy_neighbour": "throttle_vm", "degraded_nic": "drain_host",
    "slow_disk": "drain_host", "flapping_manager": "replace_manager",
})
DAY_S = 86400.0


def subject_of(labels: Labels) -> str:
    label = dict(labels)
    return label["host"] if "host" in label else f"manager-{label['manager']}"


class AnomalyMonitor:
    """Detectors over the watched telemetry series; records ``AnomalyDetected`` (module docstring)."""

    def __init__(self, ctx: SimContext, spec: DetectorSpec, *, alarm_score: float = 0.9, resolve_score: float = 0.75,
                 for_samples: int = 2, learn_s: float = 1.5 * DAY_S, responder: Responder | None = None) -> None:
        if not 0 <= resolve_score <= alarm_score:
            raise ValueError(f"resolve_score={resolve_score}, alarm_score={alarm_score}: allowed: "
                             "0 <= resolve_score <= alarm_score")
        self.ctx, self.spec, self.learn_s = ctx, spec, learn_s
        self.alarm_score, self.resolve_score = alarm_score, resolve_score
        if for_samples < 1:
            raise ValueError(f"for_samples={for_samples}: allowed: 1 or more samples")
        self.for_samples = for_samples
        self.responder = responder
        self._reducer = TelemetryReducer()
        self._detectors: dict[tuple[str, Labels], Detector] = {}
        self._points_per_day = max(round(DAY_S / ctx.scenario.workload.demand_update_s), 1)
        self._alerts = 0
        self._firing: set[tuple[str, Labels]] = set()
        self._above: dict[tuple[str, Labels], int] = {}
        for cls in (HostUtilisationSampled, HostDevicesSampled, ManagerHeartbeatsSampled):
            ctx.log.subscribe(cls, self._observe)

    def _observe(self, ev: Event) -> None:
        for sample in self._reducer.observe(ev):
            diagnosis = WATCHED.get(sample.family)
            if diagnosis is None:
                continue
            key = (sample.family, sample.labels)
            detector = self._detectors.get(key)
            if detector is None:
                detector = self._detectors[key] = self.spec.build(points_per_day=self._points_per_day)
            score = detector.score(sample.value)
            subject = subject_of(sample.labels)
            above = self._above[key] = self._above.get(key, 0) + 1 if score > self.alarm_score else 0
            if score <= self.resolve_score:
                self._firing.discard(key)
            if above < self.for_samples or key in self._firing:
                continue
            self._firing.add(key)
            if self.ctx.env.now < self.learn_s:
                continue
            if not (self.responder and self.responder.in_maintenance(subject)):
                self._alerts += 1
                self.ctx.recorder.emit(AnomalyDetected, source="monitor", alert_id=f"alert-{self._alerts:05d}",
                                       metric=sample.family, subject=subject, diagnosis=diagnosis,
                                       anomaly_score=score, observed_value=sample.value)


class Responder:
    """Acts on ``AnomalyDetected`` (module docstring)."""

    def __init__(self, ctx: SimContext, model: ClusterModel, injector: FaultInjector, *,
                 maintenance_s: float = 1800.0) -> None:
        self.ctx, self.model, self.injector = ctx, model, injector
        self.maintenance_s = maintenance_s
        self._busy: set[str] = set()
        self._draining: set[int] = set()
        self._quiet_until_s: dict[str, float] = {}
        self._moves = 0
        self._demand_cores = np.zeros(len(model.store.host_ids))
        """Each host's CPU demand at the last sample, plus what drains moved onto it since."""
        self._physical_cores = ctx.scenario.cluster.host_cpu_cores
        ctx.log.subscribe(AnomalyDetected, self._on_alert)
        ctx.log.subscribe(HostUtilisationSampled, self._on_sampled)

    def _on_sampled(self, ev: HostUtilisationSampled) -> None:
        self._demand_cores[self.model.store.host_index[ev.host_id]] = ev.cpu_demand_pct / 100 * self._physical_cores

    def in_maintenance(self, subject: str) -> bool:
        return subject in self._busy or self.ctx.env.now < self._quiet_until_s.get(subject, -1.0)

    def _quiet(self, subject: str) -> None:
        self._quiet_until_s[subject] = float(self.ctx.env.now) + self.maintenance_s

    def _on_alert(self, ev: AnomalyDetected) -> None:
        if ev.subject in self._busy:
            return
        self._busy.add(ev.subject)
        self.ctx.env.process(self._act(ev, ACTIONS[ev.diagnosis]))

    def _act(self, ev: AnomalyDetected, action: str) -> Generator[simpy.Event, None, None]:
        vm_id, outcome = "", ""
        host = self.model.store.host_index.get(ev.subject, -1)
        if action == "restart_vm" or action == "throttle_vm":
            pick = self.injector.top_memory_growth_vm if action == "restart_vm" else self.injector.top_cpu_vm
            vm_id = pick(host) or ""
        emit = self.ctx.recorder.emit
        emit(RemediationStarted, source="responder", alert_id=ev.alert_id, action=action, subject=ev.subject,
             vm_id=vm_id)
        if action == "restart_vm" and vm_id:
            outcome = f"restarted; {self.injector.restart_vm(vm_id):.1f} GiB freed"
        elif action == "throttle_vm" and vm_id:
            self.injector.throttle_vm(vm_id)
            outcome = "throttled"
        elif action == "drain_host":
            outcome = yield from self._drain(host)
        elif action == "replace_manager":
            was_flapping = yield from self.injector.replace_manager(ev.subject)
            outcome = "replaced a flapping manager" if was_flapping else "replaced a healthy manager"
        emit(RemediationFinished, source="responder", alert_id=ev.alert_id, action=action, subject=ev.subject,
             vm_id=vm_id, outcome=outcome or "nothing to act on")
        self._busy.discard(ev.subject)
        self._quiet(ev.subject)

    def _drain(self, host: int) -> Generator[simpy.Event, None, str]:
        m, services = self.model, self.ctx.services
        self._draining.add(host)
        rows = m.vms.on_host(host).tolist()
        moved = 0
        for row in rows:
            vm_id = m.vms.ids[row]
            destination = self._destination(row, host)
            claim = None if destination is None else services.committer.claim(vm_id, destination)
            if claim is None or destination is None:
                continue
            self._moves += 1
            self._quiet(destination)
            reason = yield from services.migrations.run_migration(f"drain-{self._moves:05d}", vm_id, destination,
                                                                  claim, services.committer, mover="responder")
            self._quiet(destination)
            if not reason:
                moved += 1
                v = m.vms
                self._demand_cores[m.store.host_index[destination]] += v.cpu_cores[row] * v.mean_utilisation[row]
        self._draining.discard(host)
        return f"drained: {moved} of {len(rows)} VMs moved"

    def _destination(self, row: int, source: int) -> str | None:
        store, request = self.model.store, self.model.vms.vm_request(row)
        if store.host_of(request.vm_id) != source:
            return None  # it left or moved meanwhile
        for h in np.argsort(self._demand_cores, kind="stable").tolist():
            if h != source and h not in self._draining and store.host_up[h] and store.claimable(request, h):
                return str(store.host_ids[h])
        return None
