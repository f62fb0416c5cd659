"""Running a scenario on real parts: the real runtime's composition root.

Theory of operation
-------------------
``run_real`` builds the same run as ``sim.run`` does, from real parts, then writes the same run
directory through ``novacron.app.finish.record_run``:

- the cluster: the libvirt hosts (the lab's two by default), capacity from libvirt
  (``RealHosts``); the VMs: the scenario's synthetic workload (the simulation's generator and
  random stream, so the same VMs arrive at the same scenario times), each a real lab guest
  sized and dirtying as drawn (``novacron.migration.guests``, the simulation's stream) and
  holding the drawn non-zero memory (``backends.lab.guest.lab_workload``: a static fill on top
  of the kernel's floor; where the floor plus the working set exceed the draw, the guest is
  bigger, its plan says so, and a note on stderr names the VM);
- the decisions: the core scheduler behind ``[raft] managers`` real ``novacron manager``
  processes, every decision committed to their Raft log first (``RealControlPlane``,
  ``ManagerHarness``);
- the moves: the batch through the core admission, planner and controller, driving libvirt
  (``RealMigrations``), each moved guest then judged from its serial consoles
  (``GuestHealthChecked``, lab hosts only); the cache: the core hierarchy over memory, a real Redis and a disk
  directory (``CacheLoad``);
- the faults, for real: the Raft leader SIGKILLed at ``leader_crash_at_s`` and restarted
  ``restart_after_s`` later; the leader cut off from the other managers by nftables at
  ``partition_at_s`` for ``partition_duration_s``; Redis SIGKILLed at ``l2_outage_start_s``
  and started again (empty) ``l2_outage_s`` later.

The loop is a timetable on the wall clock: every scenario time and interval is divided by
``[runtime] time_scale``; the controllers' poll interval and everything the parts measure are
real. Events carry wall seconds since the run's start; the managers' own logs (same origin)
and the core's fold over them (failovers) are merged in time order at the end. Every process,
guest and temporary directory the run made is removed at the end, also after a failure.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backends.clock import MonotonicClock
from backends.lab.guest import lab_workload
from backends.lab.lab import LabInfo, guest_only, running_lab
from backends.realrun.cache import CacheLoad, RedisProcess
from backends.realrun.control import RealControlPlane
from backends.realrun.hosts import RealHosts
from backends.realrun.managers import ManagerHarness, restamped
from backends.realrun.migrations import RealMigrations
from backends.realrun.support import check_supported, config_metrics
from novacron import __version__
from novacron.app.finish import RunResult, record_run
from novacron.app.profiles import load_profile
from novacron.app.rundir import RunInfo
from novacron.cluster.events import RunFinished, RunStarted
from novacron.config import ConfigError
from novacron.events import InMemoryEventLog, Recorder
from novacron.guest_health import GuestHealthChecked
from novacron.migration.calibration import CalibrationProfile
from novacron.migration.config import MigrationConfig, build_admission
from novacron.migration.guests import draw_guest_workload
from novacron.migration.protocol import GIB, MIB
from novacron.scenario import Scenario
from novacron.seeding import RunSeeds
from novacron.storage.assess import assess_pool
from sim.workloads.synthetic import synthetic_workload

Action = Callable[[], None]
RECOVERY_POLL_S = 0.05
HEALTH_POLL_S = 0.5
HEALTH_WAIT_S = 10.0
HEALTH_MIN_ALIVE = 2
"""``backends.lab.health.check_migrated_guest``'s default: two alive markers on the destination."""


class Timetable:
    """Actions at wall-clock times since the run's start, run in time order (ties: in order added)."""

    def __init__(self, clock: MonotonicClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()

    def at(self, wall_s: float, action: Action) -> None:
        heapq.heappush(self._heap, (wall_s, next(self._order), action))

    def every(self, interval_s: float, action: Action, *, start_s: float, until_s: float) -> None:
        """At a fixed rate from ``start_s``: a late tick does not push the later ones back (an action
        that overran runs again at once), so a request rate stays the scenario's on a busy machine."""
        def tick(due_s: float) -> None:
            action()
            if due_s + interval_s < until_s:
                self.at(due_s + interval_s, lambda: tick(due_s + interval_s))

        if start_s < until_s:
            self.at(start_s, lambda: tick(start_s))

    def run_until(self, end_s: float) -> None:
        while self._heap and self._heap[0][0] < end_s:
            wall_s, _, action = heapq.heappop(self._heap)
            time.sleep(max(0.0, wall_s - self.clock.now_s()))
            action()
        time.sleep(max(0.0, end_s - self.clock.now_s()))


@dataclass
class RealParts:
    hosts: RealHosts
    control: RealControlPlane
    migrations: RealMigrations
    managers: ManagerHarness | None
    redis: RedisProcess | None
    cache: CacheLoad | None


def _lab_and_uris(hosts: tuple[str, ...]) -> tuple[LabInfo, list[str], bool]:
    if hosts:
        return guest_only(), list(hosts), False
    lab = running_lab()
    if lab is None:
        raise ConfigError("--runtime real: the libvirt lab is not running and no --hosts were given; "
                          "allowed: start it with 'novacron lab up' (as root), or pass --hosts URI ...")
    return lab, [h.uri for h in lab.hosts], True


def _profile(cfg: MigrationConfig) -> CalibrationProfile:
    if cfg.calibration:
        return load_profile(cfg.calibration)
    return CalibrationProfile(name="scenario", stream_cap_bytes_s=cfg.stream_cap_mib_s * MIB,
                              stop_copy_bytes_s=cfg.stop_copy_mib_s * MIB)


def compose(scenario: Scenario, seeds: RunSeeds, recorder: Recorder, clock: MonotonicClock, work_dir: Path,
            hosts: tuple[str, ...], stack: contextlib.ExitStack) -> RealParts:
    """Build and start every real part; each is closed by ``stack`` (in reverse order)."""
    lab, uris, is_lab = _lab_and_uris(hosts)
    real_hosts = RealHosts(uris, lab, recorder, scenario.cluster, lab_uris=is_lab)
    stack.callback(real_hosts.close)
    real_hosts.record_inventory()
    managers = None
    if scenario.raft.control_plane == "raft":
        managers = ManagerHarness(work_dir / "managers", scenario.raft.managers, clock.origin_monotonic_s, recorder,
                                  formation_timeout_s=scenario.raft.formation_timeout_s,
                                  partitions=scenario.raft.partition_at_s > 0)
        stack.callback(managers.close)
        managers.start()
    c = scenario.cluster
    control = RealControlPlane.for_hosts([(h.host_id, h.cpu_cores, h.memory_gib) for h in real_hosts.hosts],
                                         cpu_overcommit=c.cpu_overcommit, network_gbps=c.host_network_gbps,
                                         disk_iops=c.host_disk_iops, hosts_per_rack=c.hosts_per_rack,
                                         config=scenario.scheduler, rng=seeds.numpy("scheduler.tiebreak"),
                                         recorder=recorder, managers=managers)
    migrations = RealMigrations(scenario.migration, c, build_admission(scenario.migration, scenario.scheduler),
                                _profile(scenario.migration), seeds.numpy("migration.batch"), recorder, real_hosts,
                                control)
    redis = cache = None
    if scenario.cache.enabled:
        redis = RedisProcess(work_dir)
        stack.callback(redis.kill)
        redis.start()
        cache = CacheLoad(scenario.cache, redis.url, recorder, clock, seeds.numpy("cache.workload"))
        stack.callback(cache.close)
        if scenario.cache.warm_start:
            cache.warm_start()
    return RealParts(real_hosts, control, migrations, managers, redis, cache)


def schedule(scenario: Scenario, parts: RealParts, seeds: RunSeeds, table: Timetable) -> None:
    """Put the scenario's VMs, batch, faults, samples and cache load on the timetable."""
    scale, end_s = scenario.runtime.time_scale, scenario.duration_s / scenario.runtime.time_scale
    guests_rng = seeds.numpy("migration.guests")

    def arrive(vm_id: str, cpu_cores: int, memory_gib: float) -> None:
        parts.control.request(vm_id, cpu_cores, memory_gib)
        host_id = parts.control.place(vm_id, cpu_cores, memory_gib)
        if host_id is None:
            return
        drawn = draw_guest_workload(guests_rng, scenario.migration, int(memory_gib * GIB))
        guests_rng.random()  # the simulation's shut-off draw (shutoff_fraction is 0 for real)
        workload = lab_workload(round(memory_gib * 1024), (drawn.resident_bytes + drawn.wws_bytes) / MIB,
                                drawn.wws_bytes / MIB, drawn.dirty_rate_pages_s)
        if workload.excess_mib > 0.5:
            print(f"note: {vm_id}: the lab guest holds {workload.nonzero_mib:.0f} MiB of non-zero memory, "
                  f"{workload.excess_mib:.0f} MiB more than drawn (the kernel's floor plus the working set "
                  "exceed the draw); its migration is planned at the true size, the simulation moves less: "
                  "raise [migration] nonzero_fraction", file=sys.stderr)
        parts.migrations.guests[vm_id] = workload.as_workload()
        parts.hosts.boot(vm_id, host_id, workload)

    for spec in synthetic_workload(scenario, seeds.numpy("workload.synthetic")):
        table.at(spec.arrival_s / scale, lambda s=spec: arrive(s.vm_id, s.cpu_cores, s.memory_gib))  # type: ignore[misc]
    _schedule_batch(scenario, parts, table)
    _schedule_faults(scenario, parts, table)
    interval_s = scenario.workload.demand_update_s / scale
    table.every(interval_s, lambda: parts.migrations.update_loads(parts.hosts.sample(table.clock.now_s())),
                start_s=0.0, until_s=end_s)
    if parts.cache is not None:
        cfg = scenario.cache
        active_end_s = min(end_s, (cfg.active_s if cfg.active_s is not None else scenario.duration_s) / scale)
        table.every(cfg.tick_s / scale, parts.cache.batch, start_s=cfg.tick_s / scale, until_s=active_end_s)


def _schedule_batch(scenario: Scenario, parts: RealParts, table: Timetable) -> None:
    cfg, scale = scenario.migration, scenario.runtime.time_scale
    end_s = scenario.duration_s / scale
    if cfg.migrations <= 0:
        return

    def start_batch() -> None:
        for at_s, vm_id, n in parts.migrations.batch():
            table.at(at_s / scale, lambda v=vm_id, k=n: parts.migrations.request(k, v, table.clock.now_s()))  # type: ignore[misc]

    def step() -> None:
        migrations = parts.migrations
        migrations.step(table.clock.now_s())
        while migrations.completed:
            _check_health(parts, table, *migrations.completed.pop(0), deadline_s=table.clock.now_s() + HEALTH_WAIT_S)

    table.at(cfg.start_s / scale, start_batch)
    table.every(cfg.poll_interval_s, step, start_s=cfg.start_s / scale, until_s=end_s)


def _check_health(parts: RealParts, table: Timetable, migration_id: str, vm_id: str, source: str, destination: str,
                  *, deadline_s: float) -> None:
    """Judge a moved guest from its consoles (LAB.md: QEMU may report success for a guest that
    crashed); asked again every ``HEALTH_POLL_S`` until healthy, clearly not, or ``deadline_s``."""
    health = parts.hosts.judge(vm_id, source, destination)
    if health is None:
        return  # a remote host: its console is not readable here
    settled = health.healthy or health.alive_markers_after >= HEALTH_MIN_ALIVE
    if not settled and table.clock.now_s() < deadline_s:
        table.at(table.clock.now_s() + HEALTH_POLL_S, lambda: _check_health(
            parts, table, migration_id, vm_id, source, destination, deadline_s=deadline_s))
        return
    parts.hosts.recorder.emit(GuestHealthChecked, source=destination, vm_id=vm_id, migration_id=migration_id,
                              healthy=health.healthy, alive_markers_after=health.alive_markers_after,
                              last_alive_seq_before=health.last_alive_seq_before,
                              first_alive_seq_after=health.first_alive_seq_after, problem=health.describe())


def _schedule_faults(scenario: Scenario, parts: RealParts, table: Timetable) -> None:
    r, c, scale = scenario.raft, scenario.cache, scenario.runtime.time_scale
    managers, redis = parts.managers, parts.redis
    if managers is not None and r.leader_crash_at_s > 0:
        def crash() -> None:
            killed = managers.crash_leader()
            if killed is not None:
                table.at(table.clock.now_s() + r.restart_after_s / scale, lambda: managers.restart(killed))

        table.at(r.leader_crash_at_s / scale, crash)
    if managers is not None and r.partition_at_s > 0:
        def heal() -> None:
            managers.heal()
            poll_until_recovered()

        def poll_until_recovered() -> None:
            if not managers.recovered():
                table.at(table.clock.now_s() + RECOVERY_POLL_S, poll_until_recovered)

        table.at(r.partition_at_s / scale, managers.isolate_leader)
        table.at((r.partition_at_s + r.partition_duration_s) / scale, heal)
    if redis is not None and c.l2_outage_start_s is not None:
        table.at(c.l2_outage_start_s / scale, redis.kill)
        table.at((c.l2_outage_start_s + c.l2_outage_s) / scale, redis.start)


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: every guest, manager and Redis it started is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_real(scenario: Scenario, seed: int, out_dir: Path, scenario_text: str, *, hosts: tuple[str, ...] = (),
             report: bool = True) -> RunResult:
    hosts = hosts or scenario.runtime.hosts
    check_supported(scenario, hosts)
    started = time.perf_counter()
    clock = MonotonicClock()
    log = InMemoryEventLog()
    recorder = Recorder(log, clock.now_s)
    seeds = RunSeeds(seed)
    recorder.emit(RunStarted, source="real", scenario=scenario.name, seed=seed, runtime="real", version=__version__)
    assess_pool(scenario.storage, recorder)  # closed form: the same event as a simulated run
    work_dir = out_dir / "real"
    work_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_terminate_cleanly())
        parts = compose(scenario, seeds, recorder, clock, work_dir, hosts, stack)
        table = Timetable(clock)
        schedule(scenario, parts, seeds, table)
        table.run_until(scenario.duration_s / scenario.runtime.time_scale)
        finished = recorder.emit(RunFinished, source="real", duration_s=clock.now_s())
    manager_events = parts.managers.events(list(log)) if parts.managers is not None else []
    events = restamped([*log, *(e for e in manager_events if e.t_s <= finished.t_s)])
    info = RunInfo(scenario=scenario.name, seed=seed, runtime="real", wall_s=time.perf_counter() - started)
    return record_run(out_dir, info, events, config_metrics(scenario), scenario, scenario_text, report=report)
