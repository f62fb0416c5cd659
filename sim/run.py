"""Running a scenario in simulation: the composition root. Build the run's services, start the
model's components, run it, write the run directory.

``compose`` builds the run's services once (``sim.services.build``: allocation store, control
plane, scheduler, admission, migration service, committer), carried by the context, then starts
the components -- functions that receive the ``SimContext`` and start their SimPy processes --
in the order of ``COMPONENTS`` (an immutable tuple: each capability adds its component here).

``run_scenario`` streams: the log keeps no events; each one goes to the run directory's writer
(Parquet row groups, the hash, the metrics folds) as it is recorded, so a long run's memory is
the live model's. ``simulate`` keeps the log in memory for callers that read it (sweeps, golden
runs, tests).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from novacron import __version__
from novacron.app.eventstore import DEFAULT_ROW_GROUP_EVENTS
from novacron.app.finish import RunResult
from novacron.app.report import write_report
from novacron.app.rundir import RunInfo, RunWriter
from novacron.cluster.events import RunFinished, RunStarted
from novacron.events import Sink
from novacron.scenario import Scenario, scenario_targets
from novacron.slo import Target
from sim import autoscaling, cache, edge, faults, health, predictive_migration, services, storage
from sim.cluster_model import ClusterModel
from sim.context import SimContext
from sim.early_stop import EarlyStop
from sim.federation import component as federation_component
from sim.migration import kinds as kind_migration
from sim.migration import service as migration_service
from sim.raft import component as raft_component

Component = Callable[[SimContext], object]

RUN_GC_THRESHOLDS = (700, 10, 1000)
"""The cyclic garbage collector's thresholds while a model runs (Python's defaults: 700, 10, 10).
Young collections stay as they are (small and cache-friendly); a full collection, which scans the
whole live model, waits for 1000 middle-generation collections instead of 10. While the model
grows (scale-10000's arrival hour) the default let one happen every time the heap grew by a
quarter: 13 in scale-10000's first 20 simulated minutes, 8.2 s of the collector's 9.6 s there;
with these, 1.6 s in all and a peak RSS of 0.73 instead of 0.70 GiB. Collection never changes
what a run does, only when unreachable cycles are freed."""

RELEASE_MODEL_ABOVE_EVENTS = 2_000_000
"""A run whose log holds at least this many events frees its dead model before the report even when
the process exits right after (``run_scenario``'s ``release_model``): the report of a long log
reads millions of rows, and its memory would otherwise stack on the model's. scale-1000 over 30
simulated days (9.0 million events), measured 2026-12-02: peak RSS 0.744 GiB with the model frozen,
0.666 GiB with this rule (0.689 in a run that freed every model), the 1-day run 0.59 GiB either
way, for ~6 s of collection in ~165 s of CPU.
Below it (scale-1000 for a day: 0.46 million events) the report is small and the collection is
~9 % of the run."""


@contextmanager
def _collecting_for_a_run() -> Iterator[None]:
    """``RUN_GC_THRESHOLDS`` while the block runs, then the thresholds as they were."""
    before = gc.get_threshold()
    gc.set_threshold(*RUN_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def start_cluster(ctx: SimContext) -> ClusterModel:
    """The cluster model with its faults (a Raft-backed control plane follows the manager faults)."""
    model = ClusterModel(ctx)
    model.start()
    faults.start(ctx, model)
    return model


COMPONENTS: tuple[Component, ...] = (
    start_cluster,
    health.start,
    cache.start,
    migration_service.start,
    raft_component.start,
    storage.start,
    federation_component.start,
    autoscaling.start,
    predictive_migration.start,
    edge.start,
    kind_migration.start,
)


def compose(ctx: SimContext, control_plane: services.ControlPlaneFactory = services.default_control_plane,
            ) -> list[object]:
    """Build the run's services and start every component; returns what the components built."""
    services.build(ctx, control_plane)
    return [component(ctx) for component in COMPONENTS]


def simulate(scenario: Scenario, seed: int, *, progress: bool = False) -> SimContext:
    """Run the model to the scenario's end and return its context (events in ``ctx.log``)."""
    ctx, _ = _simulate(scenario, seed, progress=progress, watch=None)
    return ctx


def simulate_verdict_only(scenario: Scenario, seed: int, targets: Iterable[Target]) -> tuple[SimContext, EarlyStop]:
    """Like ``simulate``, but ends the run once one of ``targets`` has failed for good
    (``EarlyStop.stopped``): for callers that only need the verdict (``size``, ``sweep --early-stop``)."""
    ctx, stop = _simulate(scenario, seed, progress=False, watch=tuple(targets))
    assert stop is not None
    return ctx, stop


def _simulate(scenario: Scenario, seed: int, *, progress: bool, watch: tuple[Target, ...] | None,
              sinks: tuple[Sink, ...] = (), retain: bool = True) -> tuple[SimContext, EarlyStop | None]:
    ctx = SimContext.create(scenario, seed, sinks=sinks, retain=retain)
    stop = None if watch is None else EarlyStop.watch(ctx, watch)
    ctx.recorder.emit(RunStarted, source="sim", scenario=scenario.name, seed=seed, runtime="sim",
                      version=__version__)
    compose(ctx)
    with _collecting_for_a_run():
        _advance(ctx, scenario.duration_s, progress, stop)
    ctx.recorder.emit(RunFinished, source="sim", duration_s=float(ctx.env.now) if stop and stop.stopped
                      else scenario.duration_s)
    return ctx, stop


def _advance(ctx: SimContext, until_s: float, progress: bool, stop: EarlyStop | None = None) -> None:
    steps = 100 if stop is None else 400  # a watched run checks more often: it stops sooner
    with tqdm(total=round(until_s), unit="sim s", disable=not progress, leave=False,
              desc="simulating") as bar:
        for k in range(1, steps + 1):
            target = until_s * k / steps
            ctx.env.run(until=target)
            bar.update(round(target) - bar.n)
            if stop is not None and stop.stopped:
                return


def run_scenario(scenario: Scenario, seed: int, out_dir: Path, scenario_text: str, *,
                 progress: bool = False, report: bool = True,
                 row_group_events: int = DEFAULT_ROW_GROUP_EVENTS, release_model: bool = True,
                 release_model_above_events: int = RELEASE_MODEL_ABOVE_EVENTS) -> RunResult:
    """Run ``scenario`` and write its directory as it goes (log, metrics, summary, report).

    Once simulated, the model is garbage held in reference cycles (SimPy processes, subscribers).
    ``release_model`` frees it with a full collection before the metrics and the report read the
    log back, so their memory does not add to the model's; that collection visits every object the
    process holds (scale-1000: ~3 s of ~34 s of CPU). A caller that exits right after the run (the
    ``novacron`` command) passes False: the dead model is frozen out of the collector's reach
    (``gc.freeze``) and its memory goes back with the process, so neither this collection nor the
    one at interpreter shutdown scans it; the report is then written with that memory still held,
    unless a report is written and the log holds ``release_model_above_events`` or more
    (``RELEASE_MODEL_ABOVE_EVENTS``)."""
    started = time.perf_counter()
    writer = RunWriter(out_dir, row_group_events)
    try:
        ctx, _ = _simulate(scenario, seed, progress=progress, watch=None, sinks=(writer.feed,), retain=False)
    except BaseException:
        writer.abort()
        raise
    config_metrics = dict(ctx.config_metrics)
    del ctx
    if release_model or (report and writer.log.count >= release_model_above_events):
        gc.collect()
    else:
        gc.freeze()
    info = RunInfo(scenario=scenario.name, seed=seed, runtime="sim", wall_s=time.perf_counter() - started)
    targets, not_applicable = scenario_targets(scenario)
    summary, verdict = writer.finish(info, scenario_text, extra_metrics=config_metrics, targets=targets,
                                     not_applicable=not_applicable)
    if report:
        write_report(out_dir)
    return RunResult(out_dir, summary, verdict)
