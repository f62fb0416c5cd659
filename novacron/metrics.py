"""Run metrics: the numbers the target catalogue checks, computed from the event log alone.

Theory of operation
-------------------
Each capability contributes a fold: an object that takes the events of the types it names
(``handlers``), one at a time in log order, and gives its named metrics at the end (``result``).
``MetricsFold`` routes every event of a run to the folds that asked for its type, so a run folds
its metrics while it writes its log and never reads the log back (memory follows the live
cluster, not the log; see ``novacron.streaming`` for how percentiles and sums stay exact).
``compute_metrics`` folds a log held in memory the same way, so a simulated run, a real run and
a replayed log produce the same metrics from the same events.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from novacron.bft.metrics import CriticalOpFold
from novacron.cache.metrics import CacheFold
from novacron.cluster.events import ClusterUtilisationSampled, RunFinished, VMPlaced, VMRejected, VMRequested
from novacron.cluster.kind_metrics import KIND_METRICS, KindStartFold
from novacron.cluster.memory_pool_metrics import MEMORY_POOL_METRICS, MemoryPoolFold
from novacron.cluster.pool_metrics import POOL_METRICS, PoolFold
from novacron.cluster.sla_metrics import ContentionFold, SlaEnergyFold
from novacron.cluster.uptime import HostPeakFold, IOFold, UptimeFold
from novacron.edge.metrics import EDGE_METRICS, EdgeFold
from novacron.events import Event
from novacron.federation.metrics import FEDERATION_METRICS, FederationFold
from novacron.migration.events import MigrationAdmitted
from novacron.migration.kinds_metrics import KIND_MIGRATION_METRICS, KindMigrationFold
from novacron.migration.metrics import MigrationFold
from novacron.raft.metrics import RaftFold
from novacron.scheduler.gpu_metrics import GPU_METRICS, GpuFold
from novacron.scheduler.metrics import SchedulerFold
from novacron.storage.metrics import StorageFold
from novacron.streaming import ColumnFactory, Fold, Handler, InMemoryColumn, running_max
from novacron.streaming import EventsByType as EventsByType  # re-exported: callers group a log with it
from novacron.streaming import Metrics as Metrics
from novacron.streaming import fold_events as fold_events


class PlacementFold:
    """Admission: requests, placements, rejections, and how long a request waited for its answer.

    A request still unanswered at the end has waited from its request to the end of the run
    (``RunFinished``), so a control plane that stopped answering shows in
    ``cluster.vm_answer_wait_max_ms`` even though it rejected nothing. A log without its end (a
    run cut short, or a simulation asked mid-run) with requests still waiting has not measured
    how long they wait: the metric is left out ("not measured"), never 0."""

    def __init__(self) -> None:
        self.requested = self.rejected = 0
        self.asked_s: dict[str, float] = {}
        """When each request still unanswered was made (a Raft control plane decides at commit)."""
        self.answer_wait_max_ms = 0.0
        self.placement_waits_ms: list[float] = []
        """Request to first placement, in placement order (a Raft plane's commit latency shows here)."""
        self.finished_s: float | None = None
        self.decision_ms = InMemoryColumn()

    def handlers(self) -> Mapping[type[Event], Handler]:
        return {VMRequested: self._requested, VMRejected: self._rejected, VMPlaced: self._placed,
                RunFinished: self._finished}

    def _requested(self, ev: VMRequested) -> None:
        self.requested += 1
        self.asked_s[ev.vm_id] = ev.t_s

    def _rejected(self, ev: VMRejected) -> None:
        self.rejected += 1
        self._answered(ev.vm_id, ev.t_s)

    def _placed(self, ev: VMPlaced) -> None:
        self.decision_ms.append(ev.decision_ms)
        wait_ms = self._answered(ev.vm_id, ev.t_s)
        if wait_ms is not None:  # a restart after a host failure answers no request
            self.placement_waits_ms.append(wait_ms)

    def _answered(self, vm_id: str, t_s: float) -> float | None:
        """How long the request for ``vm_id`` waited, if one was waiting."""
        asked = self.asked_s.pop(vm_id, None)
        if asked is None:
            return None
        wait_ms = (t_s - asked) * 1000.0
        self.answer_wait_max_ms = max(self.answer_wait_max_ms, wait_ms)
        return wait_ms

    def _finished(self, ev: RunFinished) -> None:
        self.finished_s = ev.t_s

    def result(self) -> Metrics:
        placed = len(self.decision_ms)
        metrics: Metrics = {
            "cluster.vms_requested": float(self.requested),
            "cluster.vms_placed": float(placed),
            "cluster.vms_rejected": float(self.rejected),
            "cluster.vms_unanswered": float(len(self.asked_s)),
        }
        if self.requested and not self.asked_s:
            metrics["cluster.vm_answer_wait_max_ms"] = self.answer_wait_max_ms
        elif self.asked_s and self.finished_s is not None:
            waiting_ms = (self.finished_s - min(self.asked_s.values())) * 1000.0
            metrics["cluster.vm_answer_wait_max_ms"] = max(self.answer_wait_max_ms, waiting_ms)
        # The share rejected is of the requests the control plane answered: one still waiting at
        # the end (a cluster that never formed a quorum) was neither admitted nor refused, so a
        # run that answered none has not measured its rejections, rather than rejected 0 %.
        answered = self.requested - len(self.asked_s)
        if answered:
            metrics["cluster.vms_rejected_pct"] = 100.0 * self.rejected / answered
        if self.placement_waits_ms:
            waits = np.array(self.placement_waits_ms)
            metrics["cluster.placement_latency_p99_ms"] = float(np.percentile(waits, 99))
            metrics["cluster.placement_latency_max_ms"] = float(waits.max())
        if placed:
            metrics["scheduler.decision_p50_ms"] = self.decision_ms.percentile(50)
            metrics["scheduler.decision_p99_ms"] = self.decision_ms.percentile(99)
        return metrics


class UtilisationFold:
    """Cluster-wide samples: one per sampling interval, few enough to keep the CPU series."""

    def __init__(self) -> None:
        self.peak_cpu: float | None = None
        self.peak_memory: float | None = None
        self.cpu = InMemoryColumn()

    def handlers(self) -> Mapping[type[Event], Handler]:
        return {ClusterUtilisationSampled: self._sampled}

    def _sampled(self, ev: ClusterUtilisationSampled) -> None:
        if not measures_capacity(ev):
            return
        self.peak_cpu = running_max(self.peak_cpu, ev.cpu_pct)
        self.peak_memory = running_max(self.peak_memory, ev.memory_pct)
        self.cpu.append(ev.cpu_pct)

    def result(self) -> Metrics:
        if self.peak_cpu is None or self.peak_memory is None:
            return {}
        return {"cluster.peak_cpu_pct": self.peak_cpu, "cluster.peak_memory_pct": self.peak_memory,
                "cluster.mean_cpu_pct": float(np.mean(self.cpu.values()))}


FoldFactory = Callable[[ColumnFactory], Fold]

FOLDS: tuple[FoldFactory, ...] = (
    lambda _: PlacementFold(),
    lambda _: UtilisationFold(),
    lambda _: CacheFold(),
    lambda _: SchedulerFold(),
    lambda _: UptimeFold(),
    HostPeakFold,
    lambda _: MigrationFold(),
    lambda _: IOFold(),
    lambda _: RaftFold(),
    ContentionFold,
    lambda _: SlaEnergyFold(),
    lambda _: StorageFold(),
    lambda _: FederationFold(),
    lambda _: CriticalOpFold(),
    lambda _: EdgeFold(),
    lambda _: PoolFold(),
    lambda _: GpuFold(),
    lambda _: KindMigrationFold(),
    lambda _: KindStartFold(),
    lambda _: MemoryPoolFold(),
)
"""Every capability's fold, in the order their metrics are merged; the argument makes the columns
of per-host samples (``novacron.streaming``)."""


class MetricsFold:
    """Every fold of ``FOLDS`` at once: ``feed`` each event of a run, ``result`` at the end."""

    def __init__(self, columns: ColumnFactory = InMemoryColumn, folds: Iterable[FoldFactory] = FOLDS) -> None:
        self.folds = [make(columns) for make in folds]
        self.count = 0
        self.placed_vm = False
        routes: dict[type[Event], list[Handler]] = defaultdict(list)
        for fold in self.folds:
            for cls, handler in fold.handlers().items():
                routes[cls].append(handler)
        self._routes = {cls: tuple(handlers) for cls, handlers in routes.items()}

    def feed(self, ev: Event) -> None:
        self.count += 1
        for handler in self._routes.get(type(ev), ()):
            handler(ev)
        if not self.placed_vm and type(ev) is VMPlaced:
            self.placed_vm = True

    def result(self) -> Metrics:
        metrics: Metrics = {"run.events": float(self.count)}
        for fold in self.folds:
            metrics.update(fold.result())
        if not self.placed_vm:
            # An empty cluster runs at 0 % with perfect uptime: that is no evidence, so the
            # utilisation targets read "not measured" rather than pass.
            for name in UTILISATION_METRICS:
                metrics.pop(name, None)
        return metrics


def placement_metrics(events: EventsByType) -> Metrics:
    return fold_events(PlacementFold(), events)


def utilisation_metrics(events: EventsByType) -> Metrics:
    return fold_events(UtilisationFold(), events)


def measures_capacity(ev: ClusterUtilisationSampled) -> bool:
    """A utilisation sample measures only with a host up: 0 % of no capacity is no measurement (and
    no pass). The folds above and the running peaks below both ask here."""
    return ev.hosts_up > 0


@dataclass(frozen=True, slots=True)
class RunningPeak:
    """How a peak metric folds one event at a time, for a run that watches it as it goes."""

    event: type[Event]
    value: Callable[[Event], float]
    needs_placed_vm: bool
    """The metric is only measured once a VM was placed (see ``UTILISATION_METRICS``)."""
    counts: Callable[[Event], bool] = lambda _: True
    """Whether an event is a measurement at all (``measures_capacity`` for utilisation samples)."""


RUNNING_PEAKS: dict[str, RunningPeak] = {
    "cluster.peak_cpu_pct": RunningPeak(ClusterUtilisationSampled, lambda e: e.cpu_pct, True,  # type: ignore[attr-defined]
                                        measures_capacity),  # type: ignore[arg-type]
    "cluster.peak_memory_pct": RunningPeak(ClusterUtilisationSampled, lambda e: e.memory_pct, True,  # type: ignore[attr-defined]
                                           measures_capacity),  # type: ignore[arg-type]
    "migration.peak_running_global": RunningPeak(MigrationAdmitted, lambda e: e.running_global, False),  # type: ignore[attr-defined]
    "migration.peak_running_per_host": RunningPeak(
        MigrationAdmitted, lambda e: max(e.running_on_source, e.running_on_destination), False),  # type: ignore[attr-defined]
}
"""The same maxima as the folds above, one event at a time (``sim.early_stop`` folds them;
``tests/test_early_stop.py`` checks that they end equal to the folds' values)."""


UTILISATION_METRICS = ("cluster.peak_cpu_pct", "cluster.peak_memory_pct", "cluster.mean_cpu_pct",
                       "cluster.host_cpu_p99_pct", "cluster.host_memory_p99_pct", "cluster.uptime_pct",
                       "cluster.peak_cpu_demand_pct", "cluster.unserved_cpu_pct", "cluster.cpu_ready_p99_pct",
                       "cluster.cpu_ready_max_pct", "cluster.slatah_pct", "cluster.pdm_pct", "cluster.slav_pct",
                       "scheduler.min_headroom_cpu_pct", "scheduler.min_headroom_memory_pct",
                       "scheduler.min_headroom_network_pct", "scheduler.min_headroom_io_pct")
"""Metrics about the VMs a cluster carries: meaningless (not measured) when it carries none. The
headroom a scheduler kept is among them: hosts left empty keep 100 % whatever the scheduler does."""


def compute_metrics(events: Iterable[Event], columns: ColumnFactory = InMemoryColumn) -> Metrics:
    """Fold a whole log (held in memory, or grouped by type) into its metrics."""
    fold = MetricsFold(columns)
    if isinstance(events, EventsByType):
        merged: Iterable[Event] = heapq.merge(*(events.of(cls) for cls in events.types()), key=lambda e: e.seq)
    else:
        merged = events
    for ev in merged:
        fold.feed(ev)
    return fold.result()


# --- the metric names a run's summary can hold, with unit and meaning (``novacron targets``) --------

MIGRATION_TYPES = ("cold", "warm", "live", "postcopy")
MIGRATION_OUTCOMES = ("completed", "aborted", "rolled_back", "failed")
CACHE_TIERS = ("l1", "l2", "ssd", "l3", "overall")

_FIXED: tuple[tuple[str, str, str], ...] = (
    ("run.events", "", "events in the run's log"),
    ("cluster.hosts", "", "hypervisor hosts in the cluster"),
    ("cluster.vms_requested", "", "VMs requested over the run"),
    ("cluster.vms_placed", "", "VM placements (first placements and restarts)"),
    ("cluster.vms_rejected", "", "VM requests no host could take"),
    ("cluster.vms_unanswered", "", "VM requests neither placed nor rejected by the end of the run"),
    ("cluster.vms_rejected_pct", "%", "VMs rejected over VM requests answered (placed or rejected)"),
    ("cluster.vm_answer_wait_max_ms", "ms",
     "longest wait of a VM request for its answer (placed or rejected); one unanswered waits until the end"),
    ("cluster.peak_cpu_pct", "%", "peak of cluster-wide CPU utilisation (served, at most 100 %) over time"),
    ("cluster.peak_cpu_demand_pct", "%", "peak of cluster-wide CPU demand over capacity (may exceed 100 %)"),
    ("cluster.unserved_cpu_pct", "%", "CPU demand no host could serve (contention) over all CPU demand"),
    ("cluster.cpu_ready_p99_pct", "%", "p99 over per-host samples of the VMs' demand left waiting (CPU ready)"),
    ("cluster.cpu_ready_max_pct", "%", "most of one VM's demand left waiting at one sample (CPU ready)"),
    ("cluster.slatah_pct", "%", "SLATAH: mean over active hosts of time at 100 % CPU over active time"),
    ("cluster.pdm_pct", "%", "PDM: mean over VMs of CPU lost to migrations (10 % while migrating) over CPU asked"),
    ("cluster.slav_pct", "%", "SLAV = SLATAH x PDM (Beloglazov and Buyya 2012), as a percentage"),
    ("cluster.it_energy_kwh", "kWh", "energy the hosts drew (power model over served CPU; down hosts 0)"),
    ("cluster.energy_kwh", "kWh", "facility energy: the hosts' energy x PUE"),
    ("cluster.peak_memory_pct", "%", "peak of cluster-wide memory utilisation over time"),
    ("cluster.mean_cpu_pct", "%", "mean cluster-wide CPU utilisation over time"),
    ("cluster.peak_network_pct", "%", "peak of cluster-wide network utilisation"),
    ("cluster.peak_disk_io_pct", "%", "peak of cluster-wide disk I/O utilisation"),
    ("cluster.host_cpu_p99_pct", "%", "99th percentile of per-host CPU samples (hot spots)"),
    ("cluster.host_memory_p99_pct", "%", "99th percentile of per-host memory samples"),
    ("cluster.host_network_max_pct", "%", "highest per-host network utilisation sample"),
    ("cluster.host_disk_io_max_pct", "%", "highest per-host disk I/O utilisation sample"),
    ("cluster.uptime_pct", "%", "VM-time weighted availability (down from VMFailed until running again)"),
    ("cluster.vm_uptime_min_pct", "%", "availability of the least available VM"),
    ("cluster.vm_uptime_p1_pct", "%", "1st percentile of per-VM availability"),
    ("cluster.vm_failures", "", "VMs that failed with their host"),
    ("cluster.host_failures", "", "host crashes injected"),
    ("cluster.placement_latency_p99_ms", "ms", "p99 of request-to-placement latency (through the Raft log)"),
    ("cluster.placement_latency_max_ms", "ms", "longest request-to-placement latency"),
    ("scheduler.decision_p50_ms", "ms", "median modelled placement decision time"),
    ("scheduler.decision_p99_ms", "ms", "p99 modelled placement decision time"),
    ("scheduler.policy_eval_p99_ms", "ms", "p99 modelled policy evaluation time (a modelled constant)"),
    ("scheduler.policy_count", "", "placement policies (scorers) evaluated per decision"),
    ("scheduler.decision_cache_hit_rate_pct", "%", "placement decisions served by the decision cache"),
    ("scheduler.decision_cache_ttl_s", "s", "decision cache time to live (setting)"),
    ("scheduler.hosts_used", "", "hosts carrying at least one VM at the last quality sample"),
    ("scheduler.hosts_lower_bound", "", "lower bound on hosts needed for the placed VMs"),
    ("scheduler.hosts_over_lower_bound_pct", "%", "hosts used above the lower bound"),
    ("scheduler.fragmentation_pct", "%", "free capacity in pieces too small for the typical VM"),
    ("scheduler.stranded_cpu_pct", "%", "CPU left unusable because memory ran out first"),
    ("scheduler.stranded_memory_pct", "%", "memory left unusable because CPU ran out first"),
    ("scheduler.imbalance_pct", "%", "spread of host utilisation at the last sample"),
    ("scheduler.imbalance_mean_pct", "%", "mean spread of host utilisation over the run"),
    ("scheduler.min_headroom_cpu_pct", "%", "least CPU headroom any host kept"),
    ("scheduler.min_headroom_memory_pct", "%", "least memory headroom any host kept"),
    ("scheduler.min_headroom_network_pct", "%", "least network headroom any host kept"),
    ("scheduler.min_headroom_io_pct", "%", "least I/O headroom any host kept"),
    ("scheduler.migrations", "", "rebalancer moves started"),
    ("scheduler.migrations_per_hour", "1/h", "rebalancer moves per simulated hour"),
    ("migration.requested", "", "migrations that finished, whatever the outcome"),
    ("migration.vms_lost", "", "VMs lost by a migration (destination crash after switch-over)"),
    ("migration.planner.total_time_error_p50_pct", "%", "median relative error of the planner's total time"),
    ("migration.peak_running_global", "", "most migrations running at once in the cluster"),
    ("migration.peak_running_per_host", "", "most migrations running at once on one host"),
    ("migration.queue_wait_p95_s", "s", "p95 of a migration's wait for admission"),
    ("migration.max_concurrent_per_host", "", "admission limit per host (setting)"),
    ("migration.max_concurrent_global", "", "admission limit in all (setting)"),
    ("cache.tier_outages", "", "cache tier outages injected"),
    ("cache.l1.capacity_items", "items", "L1 capacity (setting)"),
    ("cache.l1.ttl_s", "s", "L1 time to live (setting)"),
    ("cache.l1.cleanup_interval_s", "s", "L1 expired-entry cleanup cycle (setting)"),
    ("raft.managers", "", "Raft managers (setting)"),
    ("raft.heartbeat_interval_ms", "ms", "leader heartbeat interval (setting)"),
    ("raft.election_timeout_min_ms", "ms", "election timeout lower bound (setting)"),
    ("raft.election_timeout_max_ms", "ms", "election timeout upper bound (setting)"),
    ("raft.election_timeout_ms_range_ok", "bool", "1 when the election timeouts lie within 150-300 ms (setting)"),
    ("raft.formation_timeout_s", "s", "cluster formation timeout (setting)"),
    ("raft.formation_s", "s", "time to the first leader's first commit"),
    ("storage.durability_nines", "nines", "-log10 of the pool's annual probability of data loss (closed form)"),
    ("storage.annual_loss_probability", "", "probability the storage pool loses data within a year (closed form)"),
    ("storage.rebuild_h", "h", "rebuild of one storage node, detection included"),
    ("storage.usable_tb", "TB", "storage pool capacity after redundancy"),
    ("storage.raw_tb", "TB", "storage pool raw capacity"),
    ("storage.xdc_write_p50_ms", "ms", "cross-DC replicated write latency p50 (scenario's mode)"),
    ("storage.xdc_write_p99_ms", "ms", "cross-DC replicated write latency p99 (scenario's mode)"),
    ("storage.xdc_at_risk_mib", "MiB", "acknowledged writes lost with the primary DC (scenario's mode)"),
    ("storage.xdc_at_risk_objects", "", "acknowledged objects lost with the primary DC (scenario's mode)"),
    ("storage.xdc_rpo_s", "s", "age of the oldest acknowledged write lost with the primary DC (scenario's mode)"),
    ("storage.xdc_max_lag_s", "s", "largest replication lag, queueing plus transfer (scenario's mode)"),
    ("storage.xdc_sync_write_p50_ms", "ms", "cross-DC replicated write latency p50 (sync)"),
    ("storage.xdc_sync_write_p99_ms", "ms", "cross-DC replicated write latency p99 (sync)"),
    ("storage.xdc_sync_at_risk_mib", "MiB", "acknowledged writes lost with the primary DC (sync)"),
    ("storage.xdc_sync_at_risk_objects", "", "acknowledged objects lost with the primary DC (sync)"),
    ("storage.xdc_sync_rpo_s", "s", "age of the oldest acknowledged write lost with the primary DC (sync)"),
    ("storage.xdc_sync_max_lag_s", "s", "largest replication lag, queueing plus transfer (sync)"),
    ("storage.xdc_async_write_p50_ms", "ms", "cross-DC replicated write latency p50 (async)"),
    ("storage.xdc_async_write_p99_ms", "ms", "cross-DC replicated write latency p99 (async)"),
    ("storage.xdc_async_at_risk_mib", "MiB", "acknowledged writes lost with the primary DC (async)"),
    ("storage.xdc_async_at_risk_objects", "", "acknowledged objects lost with the primary DC (async)"),
    ("storage.xdc_async_rpo_s", "s", "age of the oldest acknowledged write lost with the primary DC (async)"),
    ("storage.xdc_async_max_lag_s", "s", "largest replication lag, queueing plus transfer (async)"),
    ("raft.failover_ms", "ms", "leader crash to the new leader's first commit"),
    ("raft.failover_p50_ms", "ms", "median failover over every leader crash"),
    ("raft.election_after_crash_ms", "ms", "leader crash to a new leader elected"),
    ("raft.partition_recovery_s", "s", "partition healed to a leader committing again"),
    ("raft.partition_leader_changes", "", "leader changes during partitions"),
    ("raft.leaders_elected", "", "leaders elected over the run"),
    ("raft.terms_started", "", "terms started over the run"),
)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    unit: str
    meaning: str


def _expanded() -> tuple[tuple[str, str, str], ...]:
    rows: list[tuple[str, str, str]] = []
    for outcome in MIGRATION_OUTCOMES:
        rows.append((f"migration.{outcome}", "", f"migrations that ended {outcome.replace('_', ' ')}"))
    for kind in MIGRATION_TYPES:
        rows.append((f"migration.{kind}.completed", "", f"{kind} migrations completed"))
        for what in ("downtime", "total_time"):
            for stat in ("p50", "p95", "p99", "max"):
                rows.append((f"migration.{kind}.{what}_{stat}_ms", "ms",
                             f"{stat} {what.replace('_', ' ')} of completed {kind} migrations"))
    for tier in CACHE_TIERS:
        label = "all tiers" if tier == "overall" else tier.upper()
        rows += [(f"cache.{tier}.requests", "", f"cache requests that reached {label}"),
                 (f"cache.{tier}.failures", "", f"cache requests {label} failed (tier down)"),
                 (f"cache.{tier}.hit_rate_pct", "%", f"hits over requests that reached {label}"),
                 (f"cache.{tier}.latency_mean_ms", "ms", f"mean modelled latency of {label}"),
                 (f"cache.{tier}.latency_p99_max_ms", "ms", f"highest p99 modelled latency of {label}")]
    return tuple(rows)


METRICS: dict[str, MetricInfo] = {name: MetricInfo(name, unit, meaning)
                                  for name, unit, meaning in (*_FIXED, *_expanded(), *FEDERATION_METRICS,
                                                                             *EDGE_METRICS, *POOL_METRICS,
                                                                             *GPU_METRICS, *KIND_MIGRATION_METRICS,
                                                                             *KIND_METRICS, *MEMORY_POOL_METRICS)}
"""Every metric name a run's summary can hold; targets may name any of them."""


def nearest_metric(name: str) -> str | None:
    import difflib

    near = difflib.get_close_matches(name, list(METRICS), n=1, cutoff=0.5)
    return near[0] if near else None
