"""VM migration: planner, lifecycle, controller and admission control (no I/O).

The port
--------
``novacron.ports.Hypervisor`` is what a runtime provides; ``sim.migration.hypervisor`` (a QEMU-faithful
model) and ``backends`` (libvirt) implement it::

    class Hypervisor(Protocol):
        def host_id(self) -> str
        def describe_vm(self, vm_id: str) -> VMDescription
        def execute(self, command: MigrationCommand) -> None     # non-blocking
        def job_stats(self, vm_id: str) -> JobStats              # a poll

Commands (``protocol.py``), controller -> hypervisor, addressed to the source host:

========================  ========================================================================
``StartMigration``        vm, source, destination, ``MigrationType`` (cold/warm/live/postcopy) and
                          ``MigrationParams``: downtime limit (ms), max bandwidth (bytes/s or
                          None = unlimited), capabilities auto-converge, xbzrle (+ cache size),
                          postcopy-ram. libvirt: ``migrate3``/``migrateToURI3`` flags LIVE,
                          AUTO_CONVERGE, COMPRESSED, POSTCOPY; warm = not LIVE (paused copy);
                          cold = OFFLINE|PERSIST_DEST.
``SetDowntimeLimit``      QMP ``downtime-limit`` / ``migrateSetMaxDowntime``.
``SetMaxBandwidth``       QMP ``max-bandwidth`` / ``migrateSetMaxSpeed`` (None = unlimited).
``StartPostcopy``         QMP ``migrate-start-postcopy`` / ``migrateStartPostCopy``.
``ForceComplete``         pause the source so the copy finishes (Nova's force-complete).
``AbortMigration``        QMP ``migrate_cancel`` / ``abortJob``; the VM stays on the source.
========================  ========================================================================

Observations, hypervisor -> controller: ``JobStats`` (QMP ``query-migrate`` / libvirt
``jobStats``): ``status`` (``JobStatus``: setup, active, device, postcopy-active, completed,
failed, cancelled), memory total / processed / remaining bytes, ``dirty_sync_count``,
``dirty_rate_pages_s``, ``throughput_bytes_s``, ``expected_downtime_ms``, and once completed
``downtime_ms``, ``total_time_ms``, ``setup_time_ms``; ``cpu_throttle_pct``,
``postcopy_page_faults``, ``switched_to_postcopy`` (a short post-copy phase can fall between two
polls); ``error`` when failed.

The contract every implementation meets is the abstract suite ``tests/hypervisor_contract.py``
(``HypervisorContract``: subclass it with ``make_hypervisor`` and ``wait``).

The driver loop
---------------
The controller is a sans-I/O state machine: it receives observations and the time and returns
commands; the runtime waits and performs them. Both runtimes run the same loop, ``drive_step``
in ``controller.py`` does one turn of it::

    ctl = MigrationController(request, plan, policy, sink)   # phase: requested
    ctl.admitted(now_s)                                      # admission granted a slot
    commands = ctl.start(now_s)                              # [StartMigration(...)]
    while not ctl.done:
        for c in commands: hypervisor.execute(c)
        <wait ctl.poll_interval_s>                           # or until the next dirty sync
        commands = ctl.observe(hypervisor.job_stats(vm_id), now_s)

Every phase change is a ``MigrationPhaseChanged`` event; every command a
``MigrationCommandIssued``; every dirty-sync round a ``MigrationRoundCompleted``; the end a
``MigrationFinished`` carrying the planner's prediction beside the result.

Modules: ``protocol`` (commands, observations), ``lifecycle`` (the transition table),
``planner`` (type choice and analytic prediction), ``controller`` (Nova's libvirt knobs),
``admission`` (cost model, caps, headroom, priority queue, token bucket), ``move_admission``
(the rebalancer's protocol over it), ``events``, ``metrics``, ``plots``, ``config``.

Admission API for the scheduler's rebalancer (``admission.py``)::

    adm = AdmissionController(AdmissionPolicy(max_per_host=2, max_global=10, ...))
    adm.update_host(host_id, HostLoad(cpu_pct=..., memory_pct=..., network_pct=..., io_pct=...))
    cost = estimate_cost(vm_memory_gib=..., bandwidth_gbps=..., host_memory_gib=..., ...)
    request = AdmissionRequest(migration_id=..., vm_id=..., source_host_id=..., destination_host_id=...,
                               cost=cost, priority=0)
    adm.can_admit(request, now_s) -> Decision   # pure check (truthy; .reason says why not)
    adm.try_admit(request, now_s) -> Decision   # takes a slot and a rate-limit token if admitted
    adm.enqueue(request, now_s)                 # priority queue; pop_admissible(now_s) admits what fits
    adm.release(migration_id)                   # when the migration ends, whatever the outcome

The scheduler's rebalancer speaks ``novacron.scheduler.admission.MoveAdmission``
(``may_start(move, planned)``, ``started``, ``finished``, ``moves``);
``move_admission.RebalancerAdmission`` implements it over an ``AdmissionController``. In the
simulation, ``sim.migration.service.rebalancer_admission(ctx, controller, memory_gib_of)`` gives
one over the run's one controller and the run's ``MigrationService.run_migration(...)`` runs the move.
"""

from novacron.migration.protocol import (
    AbortMigration,
    ForceComplete,
    JobStats,
    JobStatus,
    MigrationCommand,
    MigrationParams,
    MigrationType,
    PowerState,
    SetDowntimeLimit,
    SetMaxBandwidth,
    StartMigration,
    StartPostcopy,
    VMDescription,
)

__all__ = [
    "AbortMigration",
    "ForceComplete",
    "JobStats",
    "JobStatus",
    "MigrationCommand",
    "MigrationParams",
    "MigrationType",
    "PowerState",
    "SetDowntimeLimit",
    "SetMaxBandwidth",
    "StartMigration",
    "StartPostcopy",
    "VMDescription",
]
