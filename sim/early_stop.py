"""Early stop: end a run as soon as a required target has failed for good.

Theory of operation
-------------------
``novacron size`` and ``sweep --early-stop`` only need each run's pass/fail verdict. Some
targets are on metrics that only move one way during a run (``novacron.slo.MONOTONE_METRICS``:
a peak only grows), and a target whose comparator points against that trend ("peak memory
< 85 %") fails for good the moment it fails part-way. ``EarlyStop`` subscribes to the events
those metrics fold (``novacron.metrics.RUNNING_PEAKS``), keeps each running peak, and records
the first simulated time at which such a target failed; ``sim.run.simulate`` checks it between
its steps and ends the run there. The verdict of the stopped run is "failed early at t_s=...",
and it equals the full run's verdict (``tests/test_early_stop.py``). A plain ``novacron run``
builds no watcher, so its event log and summary are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from novacron.cluster.events import VMPlaced
from novacron.events import Event
from novacron.metrics import RUNNING_PEAKS
from novacron.slo import Target, early_stop_targets, fails_for_good
from sim.context import SimContext


@dataclass
class EarlyStop:
    """Running peaks of the watched targets' metrics, and the targets failed for good so far."""

    ctx: SimContext
    targets: tuple[Target, ...]
    peaks: dict[str, float] = field(default_factory=dict)
    failed: list[Target] = field(default_factory=list)
    failed_at_s: float | None = None
    placed_vm: bool = False

    @classmethod
    def watch(cls, ctx: SimContext, targets: Iterable[Target]) -> EarlyStop:
        watched = tuple(t for t in early_stop_targets(targets) if t.metric in RUNNING_PEAKS)
        stop = cls(ctx, watched)
        ctx.log.subscribe(VMPlaced, stop._on_placed)
        for event_cls in {RUNNING_PEAKS[t.metric].event for t in watched}:
            ctx.log.subscribe(event_cls, stop._on_event)
        return stop

    @property
    def stopped(self) -> bool:
        return self.failed_at_s is not None

    def describe(self) -> str:
        return f"failed early at t_s={self.failed_at_s:g}" if self.failed_at_s is not None else ""

    def _on_placed(self, _: VMPlaced) -> None:
        if not self.placed_vm:
            self.placed_vm = True
            self._check()

    def _on_event(self, ev: Event) -> None:
        for target in self.targets:
            peak = RUNNING_PEAKS[target.metric]
            if isinstance(ev, peak.event) and peak.counts(ev):
                value = peak.value(ev)
                self.peaks[target.metric] = max(self.peaks.get(target.metric, value), value)
        self._check()

    def _check(self) -> None:
        for target in self.targets:
            value = self.peaks.get(target.metric)
            if value is None or target in self.failed or (RUNNING_PEAKS[target.metric].needs_placed_vm
                                                          and not self.placed_vm):
                continue
            if fails_for_good(target, value):
                self.failed.append(target)
                if self.failed_at_s is None:
                    self.failed_at_s = float(self.ctx.env.now)
