"""A batch of migrations between workload kinds in a simulated run.

Theory of operation
-------------------
With ``[kind_migration] migrations > 0``, one SimPy process starts a migration every
``interval_s`` from ``start_s``: the next path of ``paths``, a workload drawn from the section
(memory, a lognormal dirty rate, its working set), its phases from ``novacron.migration.kinds``.
The migration takes its total time of simulated time (so a long one overlaps the next); at its
end an outcome is drawn with the path's failure probability, and ``KindMigrationFinished``
records it. A failed attempt resumes the source after the same stop (its downtime counts, its
transfer is lost). Draws come from the run seed's ``migration.kinds`` stream.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np
import simpy

from novacron.migration.events import KindMigrationFinished
from novacron.migration.kinds import PATHS, KindMigrationParams, Workload, failure_probability, plan
from sim.context import SimContext

MIB = 1 << 20


def start(ctx: SimContext) -> simpy.Process | None:
    if ctx.scenario.kind_migration.migrations <= 0:
        return None
    return ctx.env.process(_batch(ctx))


def _workload(ctx: SimContext, rng: np.random.Generator) -> Workload:
    c = ctx.scenario.kind_migration
    memory_mib = float(rng.choice(np.asarray(c.memory_gib))) * 1024
    sigma = math.sqrt(math.log1p(c.dirty_rate_cv ** 2))
    dirty = c.dirty_rate_mib_s * float(rng.lognormal(-sigma ** 2 / 2, sigma)) if c.dirty_rate_mib_s > 0 else 0.0
    return Workload(memory_mib=memory_mib, wws_mib=c.wws_fraction * memory_mib, dirty_rate_mib_s=dirty,
                    bandwidth_mib_s=c.bandwidth_mib_s)


def _batch(ctx: SimContext) -> Generator[simpy.Event, None, None]:
    c, env = ctx.scenario.kind_migration, ctx.env
    rng = ctx.seeds.numpy("migration.kinds")
    params = c.params()
    yield env.timeout(c.start_s)
    for k in range(c.migrations):
        path = c.paths[k % len(c.paths)]
        env.process(_one(ctx, f"kind-{k:05d}", path, _workload(ctx, rng), params, rng))
        yield env.timeout(c.interval_s)


def _one(ctx: SimContext, migration_id: str, path: str, w: Workload, params: KindMigrationParams,
         rng: np.random.Generator) -> Generator[simpy.Event, None, None]:

    phases = plan(path, w, params)
    failed = bool(rng.random() < failure_probability(path, params))
    yield ctx.env.timeout(phases.total_s)
    from_kind, to_kind = PATHS[path]
    ctx.recorder.emit(KindMigrationFinished, source="kind-migration", migration_id=migration_id, path=path,
                      from_kind=from_kind, to_kind=to_kind, outcome="failed" if failed else "completed",
                      memory_bytes=round(w.memory_mib * MIB), pre_dumps=phases.pre_dumps,
                      transferred_bytes=round(phases.transferred_mib * MIB), downtime_ms=1000.0 * phases.downtime_s,
                      total_time_ms=1000.0 * phases.total_s)
