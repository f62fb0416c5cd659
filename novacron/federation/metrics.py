"""Federation metrics from the event log: placement, the federation group, staleness, RTO and RPO.

Theory of operation
-------------------
``FederationFold`` reads only federation events (and the run's end), so a run without a federation
produces none of its metrics (and the catalogue's federation targets do not apply to it).

Requests: each ``FederationVMRequested`` is answered by a placement or a rejection, or by the
recovery that starts it elsewhere (``VMEvacuated``: its placement committed, then its datacenter
was lost before the VM started). The rejected share is of the answered ones; a request nobody
answered (its origin cluster was lost with it in flight, or the run ended first) is counted in
``federation.vms_unanswered`` and waits until the run's end in ``federation.vm_answer_wait_max_ms``,
so a federation that silently drops requests cannot pass its placement targets by rejecting nothing.

Recovery is measured per lost datacenter:

- RTO: from ``DatacenterFailed`` to the last ``VMEvacuated`` of the VMs the federation knew ran
  there. Measured only once every one of them runs elsewhere: a VM left behind leaves the RTO
  unmeasured (which fails a required target) and is counted in ``federation.vms_lost``.
- RPO: the age of the oldest cluster-state change that died with the datacenter (0 with
  synchronous replication: a VM runs only once its placement committed at a quorum of
  datacenters). VMs whose placement never left the datacenter are lost as well.

Per-datacenter figures go to ``federation.dc.<name>.*`` (peak and mean CPU, peak memory, VMs at
the last sample, WAN MiB sent); their names depend on the scenario, so they are shown in the
per-datacenter table rather than named by targets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from novacron.cluster.events import RunFinished
from novacron.events import Event
from novacron.federation.events import (
    CrossDatacenterMigrationFinished,
    DatacenterDeclaredLost,
    DatacenterFailed,
    DatacenterUtilisationSampled,
    FederationFormed,
    FederationLeaderElected,
    FederationViewSampled,
    FederationVMPlaced,
    FederationVMRejected,
    FederationVMRequested,
    VMEvacuated,
    VMFenced,
)
from novacron.streaming import Handler, InMemoryColumn, Metrics
from novacron.text_table import text_table

MIB = 1024 * 1024

FEDERATION_METRICS: tuple[tuple[str, str, str], ...] = (
    ("federation.vms_requested", "", "VMs requested from the federation"),
    ("federation.vms_placed", "", "VMs the federation placed"),
    ("federation.vms_rejected_pct", "%", "federation requests no cluster could take, of those answered"),
    ("federation.vms_unanswered", "", "federation requests neither placed nor rejected by the end (every cluster "
                                      "that could answer was lost, or still in flight)"),
    ("federation.vm_answer_wait_max_ms", "ms", "longest a federation request waited for its answer (one still "
                                               "waiting at the end: until the end)"),
    ("federation.placement_latency_p99_ms", "ms", "p99 request-to-running latency of federation placements"),
    ("federation.user_rtt_mean_ms", "ms", "mean round trip from the users' datacenter to their VM's"),
    ("federation.formation_s", "s", "federation group: time to the first leader's first commit"),
    ("federation.leaders_elected", "", "federation group leaders elected"),
    ("federation.metric_staleness_p99_s", "s", "p99 over view samples of the oldest gossiped metrics entry"),
    ("federation.metric_staleness_max_s", "s", "oldest gossiped metrics entry seen"),
    ("federation.rto_s", "s", "datacenter lost to every affected VM running elsewhere (worst outage)"),
    ("federation.rpo_s", "s", "age of the oldest cluster-state change lost with a datacenter"),
    ("federation.detection_s", "s", "datacenter lost to the federation declaring it lost"),
    ("federation.vms_lost", "", "VMs of a lost datacenter not running elsewhere at the end"),
    ("federation.vms_evacuated", "", "VMs restarted in another datacenter"),
    ("federation.vms_fenced", "", "copies stopped when a cut-off datacenter came back (split brain)"),
    ("federation.ha_groups_sharing_datacenter", "", "HA groups with two members in one datacenter at the end "
                                                    "(anti-affinity relaxed to restart or move a VM)"),
    ("federation.wan_traffic_mib", "MiB", "bytes sent over WAN links between datacenters"),
    ("federation.wan_migrations_completed", "", "VMs moved to another datacenter with their disks"),
    ("federation.wan_migrations_aborted", "", "cross-datacenter moves aborted (no convergence, no room, a loss)"),
    ("federation.wan_migration.total_time_p50_ms", "ms", "median total time of completed cross-datacenter moves"),
    ("federation.wan_migration.total_time_max_ms", "ms", "longest completed cross-datacenter move"),
    ("federation.wan_migration.downtime_max_ms", "ms", "longest downtime of a completed cross-datacenter move"),
)


class _DatacenterSeries:
    def __init__(self) -> None:
        self.peak_cpu = self.peak_memory = 0.0
        self.cpu = InMemoryColumn()
        self.vms = 0
        self.wan_bytes = 0


class FederationFold:
    def __init__(self) -> None:
        self.placed = self.rejected = self.leaders = self.evacuated = self.fenced = 0
        self.requested = 0
        self.asked_s: dict[str, float] = {}
        """When each request still unanswered was made."""
        self.answer_wait_max_ms = 0.0
        self.finished_s: float | None = None
        self.latency_ms = InMemoryColumn()
        self.staleness_s = InMemoryColumn()
        self.user_rtt_ms = 0.0
        self.formation_s: float | None = None
        self.failed: dict[str, DatacenterFailed] = {}
        self.declared_s: dict[str, float] = {}
        self.evacuated_from: dict[str, list[float]] = defaultdict(list)
        self.datacenters: dict[str, _DatacenterSeries] = {}
        self.moves_aborted = 0
        self.ha_group_of: dict[str, str] = {}
        self.datacenter_of: dict[str, str] = {}
        self.move_total_ms = InMemoryColumn()
        self.move_downtime_max_ms = 0.0

    def handlers(self) -> Mapping[type[Event], Handler]:
        return {FederationVMRequested: self._requested, RunFinished: self._finished,
                FederationVMPlaced: self._placed, FederationVMRejected: self._rejected,
                FederationLeaderElected: self._leader, FederationFormed: self._formed,
                FederationViewSampled: self._view, DatacenterFailed: self._failed,
                DatacenterDeclaredLost: self._declared, VMEvacuated: self._evacuated,
                VMFenced: self._fenced, DatacenterUtilisationSampled: self._sampled,
                CrossDatacenterMigrationFinished: self._moved}

    def _moved(self, ev: CrossDatacenterMigrationFinished) -> None:
        if ev.outcome != "completed":
            self.moves_aborted += 1
            return
        self.datacenter_of[ev.vm_id] = ev.datacenter
        self.move_total_ms.append(ev.total_time_ms)
        self.move_downtime_max_ms = max(self.move_downtime_max_ms, ev.downtime_ms)

    def _requested(self, ev: FederationVMRequested) -> None:
        self.requested += 1
        self.asked_s[ev.vm_id] = ev.t_s

    def _answered(self, vm_id: str, t_s: float) -> None:
        asked = self.asked_s.pop(vm_id, None)
        if asked is not None:
            self.answer_wait_max_ms = max(self.answer_wait_max_ms, (t_s - asked) * 1000.0)

    def _finished(self, ev: RunFinished) -> None:
        self.finished_s = ev.t_s

    def _placed(self, ev: FederationVMPlaced) -> None:
        self.placed += 1
        self._answered(ev.vm_id, ev.t_s)
        if ev.ha_group:
            self.ha_group_of[ev.vm_id] = ev.ha_group
        self.datacenter_of[ev.vm_id] = ev.datacenter
        self.latency_ms.append(ev.placement_latency_ms)
        self.user_rtt_ms += ev.user_rtt_ms

    def _rejected(self, ev: FederationVMRejected) -> None:
        self.rejected += 1
        self._answered(ev.vm_id, ev.t_s)

    def _leader(self, _: FederationLeaderElected) -> None:
        self.leaders += 1

    def _formed(self, ev: FederationFormed) -> None:
        self.formation_s = ev.formation_s

    def _view(self, ev: FederationViewSampled) -> None:
        self.staleness_s.append(ev.staleness_max_s)

    def _failed(self, ev: DatacenterFailed) -> None:
        self.failed[ev.datacenter] = ev

    def _declared(self, ev: DatacenterDeclaredLost) -> None:
        failed = self.failed.get(ev.datacenter)
        if failed is not None and ev.datacenter not in self.declared_s:
            self.declared_s[ev.datacenter] = ev.t_s - failed.t_s

    def _evacuated(self, ev: VMEvacuated) -> None:
        self.evacuated += 1
        self._answered(ev.vm_id, ev.t_s)  # committed, then lost with its datacenter before it started
        self.datacenter_of[ev.vm_id] = ev.datacenter
        self.evacuated_from[ev.from_datacenter].append(ev.t_s)

    def _fenced(self, _: VMFenced) -> None:
        self.fenced += 1

    def _sampled(self, ev: DatacenterUtilisationSampled) -> None:
        series = self.datacenters.setdefault(ev.datacenter, _DatacenterSeries())
        series.peak_cpu = max(series.peak_cpu, ev.cpu_pct)
        series.peak_memory = max(series.peak_memory, ev.memory_pct)
        series.cpu.append(ev.cpu_pct)
        series.vms = ev.vms_running
        series.wan_bytes += ev.wan_sent_bytes

    def result(self) -> Metrics:
        if not (self.requested or self.placed or self.rejected or self.leaders or self.datacenters):
            return {}
        answered = self.placed + self.rejected
        m: Metrics = {"federation.vms_requested": float(max(self.requested, answered)),
                      "federation.vms_placed": float(self.placed), "federation.leaders_elected": float(self.leaders),
                      "federation.vms_evacuated": float(self.evacuated), "federation.vms_fenced": float(self.fenced)}
        if answered:  # of the answered requests, as ``cluster.vms_rejected_pct``
            m["federation.vms_rejected_pct"] = 100.0 * self.rejected / answered
        m.update(self._answer_wait())
        if self.placed:
            m["federation.placement_latency_p99_ms"] = self.latency_ms.percentile(99)
            m["federation.user_rtt_mean_ms"] = self.user_rtt_ms / self.placed
        if self.formation_s is not None:
            m["federation.formation_s"] = self.formation_s
        if len(self.staleness_s):
            m["federation.metric_staleness_p99_s"] = self.staleness_s.percentile(99)
            m["federation.metric_staleness_max_s"] = float(self.staleness_s.values().max())
        m.update(self._moves())
        if self.ha_group_of:
            m["federation.ha_groups_sharing_datacenter"] = float(self._groups_sharing())
        m.update(self._recovery())
        m.update(self._per_datacenter())
        return m

    def _answer_wait(self) -> Metrics:
        """Unanswered requests and the longest wait, as ``PlacementFold`` measures them; a log
        without its end with requests still waiting has not measured the wait. A log with no
        ``FederationVMRequested`` (written before requests were logged) measures neither."""
        if not self.requested:
            return {}
        m: Metrics = {"federation.vms_unanswered": float(len(self.asked_s))}
        if not self.asked_s:
            m["federation.vm_answer_wait_max_ms"] = self.answer_wait_max_ms
        elif self.finished_s is not None:
            waiting_ms = (self.finished_s - min(self.asked_s.values())) * 1000.0
            m["federation.vm_answer_wait_max_ms"] = max(self.answer_wait_max_ms, waiting_ms)
        return m

    def _groups_sharing(self) -> int:
        """Groups with two members running in one datacenter (a lost datacenter runs nothing)."""
        seen: set[tuple[str, str]] = set()
        sharing: set[str] = set()
        for vm, group in self.ha_group_of.items():
            dc = self.datacenter_of.get(vm)
            if dc is None or dc in self.failed:
                continue
            if (group, dc) in seen:
                sharing.add(group)
            seen.add((group, dc))
        return len(sharing)

    def _moves(self) -> Metrics:
        done = len(self.move_total_ms)
        if not done and not self.moves_aborted:
            return {}
        m: Metrics = {"federation.wan_migrations_completed": float(done),
                      "federation.wan_migrations_aborted": float(self.moves_aborted)}
        if done:
            m["federation.wan_migration.total_time_p50_ms"] = self.move_total_ms.percentile(50)
            m["federation.wan_migration.total_time_max_ms"] = float(self.move_total_ms.values().max())
            m["federation.wan_migration.downtime_max_ms"] = self.move_downtime_max_ms
        return m

    def _recovery(self) -> Metrics:
        if not self.failed:
            return {}
        m: Metrics = {"federation.rpo_s": max(f.rpo_s for f in self.failed.values())}
        lost, rtos = 0, []
        for name, failed in self.failed.items():
            known = failed.vms_running - failed.vms_unreplicated
            times = self.evacuated_from.get(name, [])
            lost += failed.vms_unreplicated + max(0, known - len(times))
            if known > 0 and len(times) >= known:
                rtos.append(max(times) - failed.t_s)
        m["federation.vms_lost"] = float(lost)
        if rtos and len(rtos) == sum(1 for f in self.failed.values() if f.vms_running > f.vms_unreplicated):
            m["federation.rto_s"] = max(rtos)
        if self.declared_s:
            m["federation.detection_s"] = max(self.declared_s.values())
        return m

    def _per_datacenter(self) -> Metrics:
        m: Metrics = {}
        total = 0
        for name, s in sorted(self.datacenters.items()):
            prefix = f"federation.dc.{name}"
            m[f"{prefix}.peak_cpu_pct"] = s.peak_cpu
            m[f"{prefix}.mean_cpu_pct"] = float(s.cpu.values().mean()) if len(s.cpu) else 0.0
            m[f"{prefix}.peak_memory_pct"] = s.peak_memory
            m[f"{prefix}.vms"] = float(s.vms)
            m[f"{prefix}.wan_sent_mib"] = s.wan_bytes / MIB
            total += s.wan_bytes
        if self.datacenters:
            m["federation.wan_traffic_mib"] = total / MIB
        return m


DC_COLUMNS = (("vms", "VMs", "{:.0f}"), ("peak_cpu_pct", "peak CPU %", "{:.1f}"),
              ("mean_cpu_pct", "mean CPU %", "{:.1f}"), ("peak_memory_pct", "peak mem %", "{:.1f}"),
              ("wan_sent_mib", "WAN sent MiB", "{:.2f}"))


def datacenter_table(metrics: Mapping[str, float]) -> str:
    """The per-datacenter rows of a federated run's summary ('' for a run without a federation)."""
    names = sorted({k.split(".")[2] for k in metrics if k.startswith("federation.dc.")})
    if not names:
        return ""
    width = max(len("datacenter"), *(len(n) for n in names))

    def cell(name: str, key: str, fmt: str) -> str:
        value = metrics.get(f"federation.dc.{name}.{key}")
        return "-" if value is None else fmt.format(value)

    rows = [(name, [cell(name, key, fmt) for key, _, fmt in DC_COLUMNS]) for name in names]
    return text_table("datacenter", width, [title for _, title, _ in DC_COLUMNS], 12, rows)
