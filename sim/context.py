"""What every simulated component receives: the SimPy environment, the scenario, seeds, the log,
and the run's services (built once by the composition root, ``sim.services.build``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import simpy

from novacron.events import InMemoryEventLog, Recorder, Sink
from novacron.scenario import Scenario
from novacron.seeding import RunSeeds
from sim.clock import SimClock

if TYPE_CHECKING:
    from sim.services import RunServices


@dataclass
class SimContext:
    env: simpy.Environment
    scenario: Scenario
    seeds: RunSeeds
    log: InMemoryEventLog
    recorder: Recorder
    clock: SimClock
    config_metrics: dict[str, float] = field(default_factory=dict)
    """Metrics that come from configuration rather than events (timeouts, capacities)."""
    _services: RunServices | None = None

    @classmethod
    def create(cls, scenario: Scenario, seed: int, *, sinks: Iterable[Sink] = (), retain: bool = True) -> SimContext:
        """A fresh run context; ``sinks`` receive every event, ``retain=False`` keeps none in memory."""
        env = simpy.Environment()
        clock = SimClock(env)
        log = InMemoryEventLog(retain=retain)
        for sink in sinks:
            log.add_sink(sink)
        return cls(env=env, scenario=scenario, seeds=RunSeeds(seed), log=log,
                   recorder=Recorder(log, clock.now_s), clock=clock)

    @property
    def services(self) -> RunServices:
        """The run's control plane, scheduler, admission, migration service and committer."""
        if self._services is None:
            raise RuntimeError("the run's services are not built: call sim.services.build(ctx) first")
        return self._services

    def carry(self, services: RunServices) -> None:
        """Attach the run's services (once: they are the run's, built by the composition root)."""
        if self._services is not None:
            raise RuntimeError("the run's services are built once")
        self._services = services
