"""Scoring a detector against labelled injected faults: precision, recall, F1 and detection delay per kind.

Theory of operation
-------------------
The ground truth is the run's log: each ``FaultInjected`` / ``FaultCleared`` pair is one
``LabelledFault`` of one kind on one *subject* -- the host whose telemetry shows it (a VM's leak or
noise shows in its host's series) or, for a flapping manager, the manager. A fault that was never
cleared ends when the run does. Each ``AnomalyDetected`` is one ``Alert``: a time, a subject and a
*diagnosis* (the fault kind the alerting metric points to).

Matching window. An alert at ``t`` *matches* a fault iff all three hold:

1. same subject and the alert's diagnosis is the fault's kind;
2. ``start_s <= t``: an alert before the fault began cannot be about it (the detector scores each
   point from the past only, so nothing it says can anticipate an injection);
3. ``t <= end_s + grace_s``: the fault's own span, closed at both ends, plus ``grace_s`` after it
   ended -- the telemetry of the last faulty interval is sampled at the interval's end and an
   action's effect (a restart freeing the leaked memory) is itself a change the detector sees.

Per fault kind:

- a fault is *detected* iff at least one alert matches it; its *detection delay* is the first
  matching alert's time minus ``start_s``; ``mean_delay_s`` averages over detected faults (NaN
  when none was);
- an alert is *true* iff it matches at least one fault (an alert inside two overlapping faults'
  windows counts once);
- ``precision = true alerts / alerts`` of that diagnosis, ``recall = detected faults / faults`` of
  that kind, ``f1 = 2PR / (P + R)``. A kind with no alerts has precision 0 (nothing it said was
  right), so a silent detector scores F1 0; with no faults of a kind, recall is 0 and so is F1.

Precision counts alerts, not incidents: a detector that repeats itself through one fault is not
penalised (each repeat is true), one that fires through quiet time is, once per alert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from novacron.anomaly.events import FAULT_KINDS, AnomalyDetected, FaultCleared, FaultInjected
from novacron.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelledFault:
    fault_id: str
    kind: str
    subject: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    t_s: float
    subject: str
    diagnosis: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KindScore:
    kind: str
    faults: int
    detected: int
    alerts: int
    true_alerts: int
    precision: float
    recall: float
    f1: float
    mean_delay_s: float


def matches(alert: Alert, fault: LabelledFault, grace_s: float) -> bool:
    """The matching rule of the module docstring (subject, diagnosis, ``start_s <= t <= end_s + grace_s``)."""
    return (alert.subject == fault.subject and alert.diagnosis == fault.kind
            and fault.start_s <= alert.t_s <= fault.end_s + grace_s)


def score_kind(kind: str, faults: Sequence[LabelledFault], alerts: Sequence[Alert], grace_s: float) -> KindScore:
    mine = [f for f in faults if f.kind == kind]
    said = [a for a in alerts if a.diagnosis == kind]
    delays = []
    for fault in mine:
        hits = [a.t_s for a in said if matches(a, fault, grace_s)]
        if hits:
            delays.append(min(hits) - fault.start_s)
    true_alerts = sum(1 for a in said if any(matches(a, f, grace_s) for f in mine))
    precision = true_alerts / len(said) if said else 0.0
    recall = len(delays) / len(mine) if mine else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return KindScore(kind=kind, faults=len(mine), detected=len(delays), alerts=len(said), true_alerts=true_alerts,
                     precision=precision, recall=recall, f1=f1,
                     mean_delay_s=sum(delays) / len(delays) if delays else math.nan)


def score_faults(faults: Sequence[LabelledFault], alerts: Sequence[Alert], grace_s: float,
                 kinds: Sequence[str] = FAULT_KINDS) -> dict[str, KindScore]:
    if grace_s < 0:
        raise ValueError(f"grace_s={grace_s}: allowed: 0 or more seconds")
    return {kind: score_kind(kind, faults, alerts, grace_s) for kind in kinds}


def faults_from_events(events: Iterable[Event], run_end_s: float) -> list[LabelledFault]:
    """The labelled faults of a log; one still active at the end ends at ``run_end_s``."""
    started: dict[str, FaultInjected] = {}
    ended: dict[str, float] = {}
    for ev in events:
        if isinstance(ev, FaultInjected):
            started[ev.fault_id] = ev
        elif isinstance(ev, FaultCleared):
            ended[ev.fault_id] = ev.t_s
    return [LabelledFault(fault_id=fid, kind=ev.fault_kind, subject=ev.host_id or ev.fault_target, start_s=ev.t_s,
                          end_s=ended.get(fid, run_end_s)) for fid, ev in started.items()]


def alerts_from_events(events: Iterable[Event]) -> list[Alert]:
    return [Alert(t_s=ev.t_s, subject=ev.subject, diagnosis=ev.diagnosis) for ev in events
            if isinstance(ev, AnomalyDetected)]


def format_table(scores: Mapping[str, KindScore], extra: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """A Markdown table, one row per kind (``extra``: more columns per kind, e.g. actions taken)."""
    extra_columns = sorted({c for row in (extra or {}).values() for c in row})
    header = ["fault kind", "faults", "detected", "alerts", "true alerts", "precision", "recall", "F1",
              "mean delay s", *extra_columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind, s in scores.items():
        delay = "-" if math.isnan(s.mean_delay_s) else f"{s.mean_delay_s:.0f}"
        cells = [kind, str(s.faults), str(s.detected), str(s.alerts), str(s.true_alerts), f"{s.precision:.2f}",
                 f"{s.recall:.2f}", f"{s.f1:.2f}", delay,
                 *((extra or {}).get(kind, {}).get(c, "") for c in extra_columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pool(runs: Sequence[Mapping[str, KindScore]]) -> dict[str, KindScore]:
    """Several runs' scores as one: counts added, precision, recall and F1 from the sums, the delay
    averaged over every detected fault of every run."""
    pooled = {}
    for kind in (runs[0] if runs else {}):
        rows = [run[kind] for run in runs]
        faults, detected = sum(r.faults for r in rows), sum(r.detected for r in rows)
        alerts, true_alerts = sum(r.alerts for r in rows), sum(r.true_alerts for r in rows)
        precision = true_alerts / alerts if alerts else 0.0
        recall = detected / faults if faults else 0.0
        delay_s = sum(r.mean_delay_s * r.detected for r in rows if r.detected)
        pooled[kind] = KindScore(kind=kind, faults=faults, detected=detected, alerts=alerts, true_alerts=true_alerts,
                                 precision=precision, recall=recall,
                                 f1=2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
                                 mean_delay_s=delay_s / detected if detected else math.nan)
    return pooled
