"""A step API for notebooks: build a run, advance it in steps, look at its state between steps.

>>> from sim import Simulation                      # doctest: +SKIP
>>> sim = Simulation("scale-10", seed=3)            # doctest: +SKIP
>>> sim.run(until_s=3600)                           # doctest: +SKIP
>>> sim.state.hosts["host-0000"].vms                # doctest: +SKIP
>>> sim.run(until_s=7200).events_df().type.value_counts()  # doctest: +SKIP

The model is the same composition ``novacron run`` uses (``sim.run.compose``), so a stepped
run and a one-shot run with the same seed produce the same events. ``state`` is the fold of the
log (``ClusterState``), kept current by the log's subscription (each event is pushed to it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from novacron import __version__
from novacron.app.eventstore import events_to_table, table_to_dataframe
from novacron.cluster.events import RunFinished, RunStarted
from novacron.cluster.state import PROJECTED_EVENTS, ClusterState, apply
from novacron.events import Event
from novacron.metrics import Metrics, compute_metrics
from novacron.scenario import Scenario, resolve_scenario
from sim.cluster_model import ClusterModel
from sim.context import SimContext
from sim.run import compose
from sim.services import ControlPlaneFactory, default_control_plane


class Simulation:
    """One run of the model that can be advanced step by step (``run`` is resumable)."""

    def __init__(self, scenario: Scenario | str | Path | None = None, *, seed: int | None = None,
                 control_plane: ControlPlaneFactory = default_control_plane) -> None:
        if not isinstance(scenario, Scenario):
            scenario, _text = resolve_scenario(None if scenario is None else str(scenario))
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.ctx = SimContext.create(scenario, self.seed)
        self.ctx.recorder.emit(RunStarted, source="sim", scenario=scenario.name, seed=self.seed, runtime="sim",
                               version=__version__)
        self._state = ClusterState()
        for cls in PROJECTED_EVENTS:
            self.ctx.log.subscribe(cls, self._fold)
        self.components = compose(self.ctx, control_plane)
        self._finished = False

    @property
    def now_s(self) -> float:
        return float(self.ctx.env.now)

    @property
    def model(self) -> ClusterModel | None:
        """The capacity model, if the composition has one (for inspection in notebooks and tests)."""
        return next((c for c in self.components if isinstance(c, ClusterModel)), None)

    def run(self, until_s: float | None = None) -> Simulation:
        """Advance to ``until_s`` (default: the scenario's end); later calls continue from there."""
        end_s = self.scenario.duration_s if until_s is None else until_s
        if self._finished:
            raise RuntimeError("the run has finished; create a new Simulation to run again")
        if end_s < self.now_s:
            raise ValueError(f"cannot run back in time: now is {self.now_s:g} s, until_s={end_s:g} s")
        if end_s > self.now_s:
            self.ctx.env.run(until=end_s)
        if end_s >= self.scenario.duration_s:
            self.ctx.recorder.emit(RunFinished, source="sim", duration_s=self.now_s)
            self._finished = True
        return self

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def state(self) -> ClusterState:
        """The projection of every event so far."""
        return self._state

    def _fold(self, ev: Event) -> None:
        apply(self._state, ev)

    def events_df(self) -> pd.DataFrame:
        """Every event so far as one DataFrame (the same columns as a run's ``events.parquet``)."""
        return table_to_dataframe(events_to_table(list(self.ctx.log)))

    def metrics(self) -> Metrics:
        metrics = compute_metrics(self.ctx.log)
        metrics.update(self.ctx.config_metrics)
        return metrics
