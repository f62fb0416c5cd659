"""A simulated run with injected faults, the detector in the loop and the responder acting on its alerts.

The same composition as ``novacron run`` (``sim.run.compose``: cluster model, scheduler, migration
service, control plane, ...), plus three components on the same clock and log: the
``FaultInjector`` (``sim.injected_faults``), the ``AnomalyMonitor`` and, unless ``act`` is false,
the ``Responder`` (``sim.anomaly_response``). The log is kept in memory for the scorer.
"""

from __future__ import annotations

from novacron import __version__
from novacron.anomaly.registry import DETECTORS, DetectorSpec
from novacron.cluster.events import RunFinished, RunStarted
from novacron.scenario import Scenario
from sim.anomaly_response import AnomalyMonitor, Responder
from sim.cluster_model import ClusterModel
from sim.context import SimContext
from sim.injected_faults import FaultInjector, InjectedFaultsConfig
from sim.run import compose


def run_with_faults(scenario: Scenario, seed: int, *, faults: InjectedFaultsConfig | None = None,
                    detector: DetectorSpec = DETECTORS["robust_window"], alarm_score: float = 0.9,
                    resolve_score: float = 0.75, for_samples: int = 2, act: bool = True) -> SimContext:
    ctx = SimContext.create(scenario, seed)
    ctx.recorder.emit(RunStarted, source="sim", scenario=scenario.name, seed=seed, runtime="sim",
                      version=__version__)
    model = next(c for c in compose(ctx) if isinstance(c, ClusterModel))
    injector = FaultInjector(ctx, model, faults or InjectedFaultsConfig())
    injector.start()
    responder = Responder(ctx, model, injector) if act else None
    AnomalyMonitor(ctx, detector, alarm_score=alarm_score, resolve_score=resolve_score,
                   for_samples=for_samples, responder=responder)
    ctx.env.run(until=scenario.duration_s)
    ctx.recorder.emit(RunFinished, source="sim", duration_s=scenario.duration_s)
    return ctx
