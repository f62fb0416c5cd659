"""``novacron faults``: injected faults in a simulated run, the detector in the loop, its alerts acted on,
and the detection scored per fault kind.

The command's arguments and its work; ``novacron.app.cli`` registers it and passes in the
simulation's runner (only the composition root imports a runtime). Bad input raises
``ValueError`` or ``CorpusError`` (exit 2)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from novacron.anomaly.events import AnomalyDetected, FaultCleared, RemediationStarted
from novacron.anomaly.fault_scoring import (
    KindScore,
    alerts_from_events,
    faults_from_events,
    format_table,
    pool,
    score_faults,
)
from novacron.anomaly.registry import DETECTORS, DetectorSpec
from novacron.app.eventstore import event_log_sha256
from novacron.app.nab import parse_params
from novacron.events import Event
from novacron.scenario import Scenario, resolve_scenario

DESCRIPTION = """Run a scenario (default: the built-in faults-small) with injected faults -- memory leaks,
noisy neighbours, degraded NICs, slow disks, flapping managers, each labelled in the event log --
a streaming detector on every watched telemetry series, and a responder acting on its alerts
(restart the leaking VM, throttle the noisy one, drain the host, replace the manager). Prints,
per fault kind, precision, recall, F1 and mean detection delay (the matching window is in
novacron.anomaly.fault_scoring), with the actions taken and the faults they removed; with several
seeds, each seed's table and the pooled one."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("scenario", nargs="?", default="faults-small", help="a scenario (default: faults-small)")
    parser.add_argument("--seed", type=int, action="append", default=None,
                        help="run seed; repeat for several runs (default: the scenario's seed)")
    parser.add_argument("--detector", default="robust_window", choices=sorted(DETECTORS),
                        help="detector of every watched series (default: robust_window, a day's window)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the detector's hyperparameters (repeatable)")
    parser.add_argument("--alarm-score", type=float, default=0.9,
                        help="a series starts firing above this score (default 0.9: 9 robust deviations "
                             "for robust_window)")
    parser.add_argument("--resolve-score", type=float, default=0.75,
                        help="and stops at or below this one (default 0.75)")
    parser.add_argument("--for-samples", type=int, default=2,
                        help="samples in a row above the alarm score before a series fires (default 2; "
                             "1 for a detector that alarms on one point, such as nova)")
    parser.add_argument("--grace", type=float, default=600.0, metavar="SECONDS",
                        help="alerts up to this long after a fault ended still match it (default 600: two samples)")
    parser.add_argument("--no-actions", action="store_true", help="detect only: nobody acts on the alerts")


class FaultRun(Protocol):
    def __call__(self, scenario: Scenario, seed: int, *, detector: DetectorSpec, alarm_score: float,
                 resolve_score: float, for_samples: int, act: bool) -> SupportsLog: ...


class SupportsLog(Protocol):
    @property
    def log(self) -> Iterable[Event]: ...


def run_faults(args: argparse.Namespace, run_with_faults: FaultRun) -> int:
    """``run_with_faults`` is the simulation's (``sim.fault_run``), passed in by the composition root."""
    if args.grace < 0:
        raise ValueError(f"--grace {args.grace}: allowed: 0 or more seconds")
    scenario, _ = resolve_scenario(args.scenario)
    spec = parse_params(DETECTORS[args.detector], args.param)
    seeds = args.seed or [scenario.seed]
    print(f"novacron faults: scenario {scenario.name}, seeds {seeds}, detector {spec.name} "
          f"{dict(spec.params) or ''} alarm {args.alarm_score} resolve {args.resolve_score} "
          f"for {args.for_samples} samples, grace {args.grace:g} s, actions {'off' if args.no_actions else 'on'}")
    runs = []
    for seed in seeds:
        started = time.process_time()
        ctx = run_with_faults(scenario, seed, detector=spec, alarm_score=args.alarm_score,
                              resolve_score=args.resolve_score, for_samples=args.for_samples,
                              act=not args.no_actions)
        events = list(ctx.log)
        scores = score_faults(faults_from_events(events, scenario.duration_s), alerts_from_events(events), args.grace)
        runs.append(scores)
        print(f"\nseed {seed}: {len(events)} events, event log sha256 {event_log_sha256(events)[:16]}, "
              f"{time.process_time() - started:.1f} CPU s\n")
        print(format_table(scores, action_columns(events, scores)))
    if len(runs) > 1:
        print(f"\npooled over {len(runs)} seeds:\n")
        print(format_table(pool(runs)))
    return 0


def action_columns(events: Sequence[Event], scores: dict[str, KindScore]) -> dict[str, dict[str, str]]:
    """Per kind: actions its alerts started, and faults of the kind an action removed."""
    diagnosis_of = {ev.alert_id: ev.diagnosis for ev in events if isinstance(ev, AnomalyDetected)}
    actions = Counter(diagnosis_of[ev.alert_id] for ev in events if isinstance(ev, RemediationStarted))
    remediated = Counter(ev.fault_kind for ev in events
                         if isinstance(ev, FaultCleared) and ev.cleared_by == "remediated")
    return {kind: {"actions": str(actions[kind]), "faults removed": str(remediated[kind])} for kind in scores}
