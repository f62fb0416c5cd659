"""Golden runs: the event-log hash and summary of pinned scenario runs, compared on every test run.

Theory of operation
-------------------
A run is a function of (scenario, seed, code version) (DESIGN.md, determinism), so the SHA-256 of
its event log (``eventstore.event_log_sha256``) pins the behaviour of the whole model. For each
scenario in ``GOLDEN_SCENARIOS`` the file ``tests/testdata/golden/<scenario>-seed<seed>.json``
keeps that hash together with the number of events, every metric and the target table, so when
the hash moves, the test can say what moved with it.

A change in behaviour is a deliberate, reviewed update of these files: run ``UPDATE_COMMAND``
and commit the diff together with the change that explains it. Nothing here runs a simulation:
the composition root (``novacron golden``) and the test run it and hand the events over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from novacron.app.eventstore import event_log_sha256
from novacron.events import Event
from novacron.slo import CATALOGUE, Target, evaluate

GOLDEN_SCENARIOS = ("default", "scale-10")
GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "testdata" / "golden"
UPDATE_COMMAND = ".venv/bin/novacron golden --update"
MAX_LISTED = 25


def golden_record(scenario: str, seed: int, events: Sequence[Event], metrics: Mapping[str, float],
                  targets: Iterable[Target] = CATALOGUE) -> dict[str, Any]:
    """What a golden file holds for one run (JSON-ready; non-finite metrics become null)."""
    return {
        "scenario": scenario,
        "seed": seed,
        "events": len(events),
        "events_sha256": event_log_sha256(events),
        "metrics": {name: _finite(value) for name, value in sorted(metrics.items())},
        "targets": {r.target.name: {"measured": _finite(r.measured), "status": r.verdict.value}
                    for r in evaluate(metrics, targets).results},
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def golden_path(scenario: str, seed: int, directory: Path = GOLDEN_DIR) -> Path:
    return directory / f"{scenario}-seed{seed}.json"


def write_golden(record: Mapping[str, Any], directory: Path = GOLDEN_DIR) -> Path:
    path = golden_path(record["scenario"], record["seed"], directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def load_golden(scenario: str, seed: int, directory: Path = GOLDEN_DIR) -> dict[str, Any] | None:
    path = golden_path(scenario, seed, directory)
    return json.loads(path.read_text()) if path.exists() else None


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """One line per difference: the hash, the event count, each target and each metric that moved."""
    found = []
    if expected["events_sha256"] != actual["events_sha256"]:
        found.append(f"events_sha256: {expected['events_sha256'][:16]}... -> {actual['events_sha256'][:16]}...")
    if expected["events"] != actual["events"]:
        found.append(f"events: {expected['events']} -> {actual['events']}")
    for kind in ("targets", "metrics"):
        old, new = expected[kind], actual[kind]
        for name in sorted(old.keys() | new.keys()):
            before, after = old.get(name, "absent"), new.get(name, "absent")
            if before != after:
                found.append(f"{kind[:-1]} {name}: {_show(before)} -> {_show(after)}")
    return found


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return f"{_show(value.get('measured'))} ({value.get('status')})"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def failure_message(scenario: str, seed: int, found: list[str]) -> str:
    metric_lines = [line for line in found if not line.startswith("events")]
    shown = found[:MAX_LISTED] + ([f"... and {len(found) - MAX_LISTED} more"] if len(found) > MAX_LISTED else [])
    return (f"golden run {scenario} seed {seed} changed ({len(metric_lines)} target/metric value(s) moved):\n  "
            + "\n  ".join(shown)
            + f"\nIf this change of behaviour is intended, update the golden files with `{UPDATE_COMMAND}` "
              "and commit them with the change that explains it.")
