"""VM migration: planner, lifecycle, controller and admission control (no I/O).

The port
--------
``novacron.ports.Hypervisor`` (the one definition of the port: ``host_id``, ``describe_vm``,
a non-blocking ``execute(command)`` and a ``job_stats`` poll) is what a runtime provides;
``sim.migration.hypervisor`` (a QEMU-faithful model) and ``backends.libvirt_hypervisor`` implement
it. How each command maps onto libvirt (``migrate3`` flags and the ``migrateSet*`` calls) is
written once, in the libvirt backend's docstring.

Commands (``protocol.py``), controller -> hypervisor, addressed to the source host:

========================  ========================================================================
``StartMigration``        vm, source, destination, ``MigrationType`` (cold/warm/live/postcopy) and
                          ``MigrationParams``: downtime limit (ms), max bandwidth (bytes/s or
                          None = unlimited), capabilities auto-converge, xbzrle (+ cache size),
                          postcopy-ram; warm is a paused copy, cold a copy of a shut-off VM.
``SetDowntimeLimit``      QMP ``downtime-limit``.
``SetMaxBandwidth``       QMP ``max-bandwidth`` (None = unlimited).
``StartPostcopy``         QMP ``migrate-start-postcopy``.
``ForceComplete``         pause the source so the copy finishes (Nova's force-complete).
``AbortMigration``        QMP ``migrate_cancel``; the VM stays on the source.
========================  ========================================================================

Observations, hypervisor -> controller: ``JobStats``, one poll of the job (QMP ``query-migrate``);
its fields, with the QEMU names they come from, are documented on the class in ``protocol.py``.

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
