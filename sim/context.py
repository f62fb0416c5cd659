"""What every simulated component receives: the SimPy environment, the scenario, seeds, the log."""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from novacron.events import InMemoryEventLog, Recorder
from novacron.scenario import Scenario
from novacron.seeding import RunSeeds
from sim.clock import SimClock


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

    @classmethod
    def create(cls, scenario: Scenario, seed: int) -> SimContext:
        env = simpy.Environment()
        clock = SimClock(env)
        log = InMemoryEventLog()
        return cls(env=env, scenario=scenario, seeds=RunSeeds(seed), log=log,
                   recorder=Recorder(log, clock.now_s), clock=clock)
