"""The health monitor of the simulation: node health scores from what the model observes.

Theory of operation
-------------------
One ``novacron.health.HealthTracker`` per host and per manager -- the computation the real
managers use too -- fed at every telemetry sample (the scenario's demand update) from the events
the model records, and scored then (``NodeHealthScored``); the scheduler's health array and the
Raft leadership preference follow those events. It runs only when something reads the scores
(``[scheduler] health_min_score`` / ``weight_health`` or ``[raft] leader_min_health``), so a
scenario without them records exactly what it did before.

- **Heartbeats** (connectivity). Each host's agent answers a heartbeat every ``HEARTBEAT_S``.
  Its request and its answer are one TCP segment each; with the NIC's retransmission rate ``r``
  (``HostDevicesSampled``, from the injected-fault telemetry; ``BASE_RETRANSMIT_PCT`` without
  it) a heartbeat needs a retransmission with probability ``1 - (1 - r)^2``, which costs an RTO
  of at least 200 ms (Linux ``TCP_RTO_MIN``) -- past the tracker's ``bad_rtt_ms`` deadline -- so
  it counts as lost. The lost count is a binomial draw from the stream ``health.heartbeats``; the
  answered ones take ``BASE_RTT_MS``. A host that is down answers nothing; a host powered off by
  consolidation is not asked.
- **Pressure**: the host's served CPU (``HostUtilisationSampled``) and the memory its guests use
  (``HostDevicesSampled`` when the fault telemetry runs, else the reserved share).
- **Errors and crashes**: a disk read slower than ``DISK_ERROR_FACTOR`` times the host's usual
  latency (a smoothed baseline of its normal samples) is logged as an I/O error, as a drive
  retrying reads does; ``HostFailed`` is a crash. A manager's heartbeat loss is
  ``ManagerHeartbeatsSampled``'s, its crashes the ``manager_crash`` faults.
"""

from __future__ import annotations

from novacron.anomaly.events import HostDevicesSampled, ManagerHeartbeatsSampled
from novacron.cluster.events import (
    HostFailed,
    HostRecovered,
    HostUtilisationSampled,
    InjectedFaultStarted,
    NodeHealthScored,
)
from novacron.health import HealthTracker
from sim.context import SimContext

HEARTBEAT_S = 1.0
BASE_RTT_MS = 0.5
BASE_RETRANSMIT_PCT = 0.05
DISK_ERROR_FACTOR = 3.0
BASELINE_WEIGHT = 0.1
"""How fast a host's usual disk latency follows its normal samples."""


def health_wanted(ctx: SimContext) -> bool:
    return ctx.scenario.scheduler.uses_health() or ctx.scenario.raft.leader_min_health > 0


class HealthMonitor:
    """Trackers per host and manager, fed from the log and scored per sample (module docstring)."""

    def __init__(self, ctx: SimContext, host_ids: list[str], managers: int) -> None:
        self.ctx = ctx
        self.hosts = {host_id: HealthTracker() for host_id in host_ids}
        self.managers = {f"manager-{k}": HealthTracker() for k in range(1, managers + 1)}
        self._retransmit_pct = dict.fromkeys(host_ids, BASE_RETRANSMIT_PCT)
        self._memory_used_pct: dict[str, float] = {}
        self._disk_baseline_ms: dict[str, float] = {}
        self._down: set[str] = set()
        self._rng = ctx.seeds.numpy("health.heartbeats")
        self._heartbeats = max(round(ctx.scenario.workload.demand_update_s / HEARTBEAT_S), 1)
        log = ctx.log
        log.subscribe(HostDevicesSampled, self._on_devices)
        log.subscribe(HostUtilisationSampled, self._on_utilisation)
        log.subscribe(HostFailed, self._on_failed)
        log.subscribe(HostRecovered, self._on_recovered)
        log.subscribe(ManagerHeartbeatsSampled, self._on_manager_sampled)
        log.subscribe(InjectedFaultStarted, self._on_fault)

    def _on_devices(self, ev: HostDevicesSampled) -> None:
        self._retransmit_pct[ev.host_id] = ev.nic_retransmit_pct
        self._memory_used_pct[ev.host_id] = ev.memory_used_pct
        baseline = self._disk_baseline_ms.get(ev.host_id)
        if baseline is None:
            self._disk_baseline_ms[ev.host_id] = ev.disk_latency_ms
        elif ev.disk_latency_ms > DISK_ERROR_FACTOR * baseline:
            self.hosts[ev.host_id].error(ev.t_s)
        else:
            self._disk_baseline_ms[ev.host_id] = baseline + BASELINE_WEIGHT * (ev.disk_latency_ms - baseline)

    def _on_utilisation(self, ev: HostUtilisationSampled) -> None:
        tracker, host_id = self.hosts[ev.host_id], ev.host_id
        sent = self._heartbeats
        if host_id in self._down:
            tracker.heartbeat_window(sent=sent, lost=sent, rtt_ms=None)
        elif ev.powered_on:
            r = self._retransmit_pct[host_id] / 100.0
            lost = int(self._rng.binomial(sent, 1.0 - (1.0 - min(r, 1.0)) ** 2))
            tracker.heartbeat_window(sent=sent, lost=lost, rtt_ms=BASE_RTT_MS)
        tracker.resources(cpu_pct=ev.cpu_pct, memory_pct=self._memory_used_pct.get(host_id, ev.memory_pct))
        self._emit(host_id, tracker, ev.t_s)

    def _on_failed(self, ev: HostFailed) -> None:
        self._down.add(ev.host_id)
        self.hosts[ev.host_id].crash(ev.t_s)

    def _on_recovered(self, ev: HostRecovered) -> None:
        self._down.discard(ev.host_id)

    def _on_manager_sampled(self, ev: ManagerHeartbeatsSampled) -> None:
        name = f"manager-{ev.manager_id}"
        tracker = self.managers.get(name)
        if tracker is None:
            return
        lost = round(self._heartbeats * min(ev.heartbeat_loss_pct, 100.0) / 100.0)
        tracker.heartbeat_window(sent=self._heartbeats, lost=lost, rtt_ms=BASE_RTT_MS)
        self._emit(name, tracker, ev.t_s)

    def _on_fault(self, ev: InjectedFaultStarted) -> None:
        tracker = self.managers.get(ev.fault_target)
        if ev.fault_kind == "manager_crash" and tracker is not None:
            tracker.crash(ev.t_s)

    def _emit(self, node_id: str, tracker: HealthTracker, now_s: float) -> None:
        score = tracker.score(now_s)
        self.ctx.recorder.emit(NodeHealthScored, source="health", node_id=node_id, health_score=score.total,
                               connectivity=score.connectivity, pressure=score.pressure,
                               reliability=score.reliability)

    def scores(self, now_s: float) -> dict[str, float]:
        """Every node's score now (for tests and reports)."""
        return {node: t.score(now_s).total for node, t in {**self.hosts, **self.managers}.items()}


def start(ctx: SimContext) -> HealthMonitor | None:
    """The run's health monitor, when a scheduler or Raft setting reads health scores."""
    if not health_wanted(ctx):
        return None
    return HealthMonitor(ctx, list(ctx.services.allocations.host_ids), ctx.scenario.faults.managers)
