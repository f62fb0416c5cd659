"""Predictive migration in the simulation: forecast each host's CPU, move VMs off before the ceiling.

Theory of operation
-------------------
The component follows the per-host utilisation samples (``HostUtilisationSampled``; the demand,
uncapped) and, once a round of samples is complete (the ``ClusterUtilisationSampled`` that
closes it), feeds them to the core's Holt forecaster and asks the core planner
(``novacron.cluster.predictive_migration``) for moves. Each move goes into the run's migration
admission queue (``MigrationService.request_move``: the admission controller's caps, headroom
and token bucket decide when it starts; the dispatcher claims the destination, runs the QEMU
model and commits through the control plane), exactly as the migration batch's requests do.
Where VMs are and what they reserve come from the scheduler's projection; which rows the
placement filters accept for a VM from the scheduler's own filters.
"""

from __future__ import annotations

import numpy as np

from novacron.cluster.events import ClusterUtilisationSampled, HostUtilisationSampled
from novacron.cluster.predictive_migration import HoltForecaster, PredictiveMigrationPlanner
from novacron.migration.events import MigrationFinished
from novacron.scheduler.state import CPU, BoolArray
from sim.context import SimContext
from sim.scheduling import SimScheduler

FIRST_MIGRATION_NUMBER = 50_000
"""Migration ids of this component start here, apart from the batch's."""


class PredictiveMigrator:
    def __init__(self, ctx: SimContext, scheduler: SimScheduler) -> None:
        self.ctx, self.scheduler = ctx, scheduler
        self.config = ctx.scenario.prediction
        self.forecaster = HoltForecaster(self.config.level_smoothing, self.config.trend_smoothing)
        self.planner = PredictiveMigrationPlanner(self.config)
        self.demand_pct = np.zeros(len(scheduler.table.host_ids))
        self.in_flight: dict[str, tuple[int, int]] = {}
        self.requested = 0
        self.steps_ahead = self.config.horizon_s / ctx.scenario.workload.demand_update_s
        ctx.log.subscribe(HostUtilisationSampled, self._sampled)
        ctx.log.subscribe(ClusterUtilisationSampled, self._round_complete)
        ctx.log.subscribe(MigrationFinished, self._finished)

    def _sampled(self, ev: HostUtilisationSampled) -> None:
        self.demand_pct[self.scheduler.rows[ev.host_id]] = ev.cpu_demand_pct

    def _finished(self, ev: MigrationFinished) -> None:
        self.in_flight.pop(ev.vm_id, None)

    def _feasible(self, vm_id: str) -> BoolArray:
        mask, _ = self.scheduler.scheduler.scheduler.feasible(self.scheduler.table, self.scheduler.vms[vm_id].request)
        return mask

    def _round_complete(self, _ev: ClusterUtilisationSampled) -> None:
        self.forecaster.observe(self.demand_pct)
        table, placed = self.scheduler.table, self.scheduler.vms
        vms_on = {row: [(vm_id, placed[vm_id].request.demand[CPU]) for vm_id in placed.ids_on(row)
                        if vm_id not in self.in_flight] for row in placed.rows()}
        busy = {row for src, dst in self.in_flight.values() for row in (src, dst)}
        forecast_pct = self.forecaster.forecast(self.steps_ahead)
        moves = self.planner.plan(now_s=float(self.ctx.env.now), forecast_pct=forecast_pct,
                                  reserved_vcpus=table.allocated[CPU], vms_on=vms_on, feasible=self._feasible,
                                  busy=busy)
        service = self.ctx.services.migrations
        for move in moves:
            if not service.running(move.vm_id) or service.adm.vm_migrating(move.vm_id):
                continue
            self.in_flight[move.vm_id] = (move.source, move.destination)
            service.request_move(FIRST_MIGRATION_NUMBER + self.requested, move.vm_id,
                                 table.host_ids[move.destination])
            self.requested += 1


def start(ctx: SimContext) -> PredictiveMigrator | None:
    """The predictive migrator, when ``[prediction] migration = true``."""
    if not ctx.scenario.prediction.migration:
        return None
    migrator = PredictiveMigrator(ctx, ctx.services.scheduler_for("prediction.migration"))
    if ctx.scenario.migration.migrations == 0:  # the batch starts the dispatcher when it runs
        ctx.env.process(ctx.services.migrations.dispatch(ctx.services.committer))
    return migrator
