"""Golden runs: the default and scale-10 scenarios must reproduce their pinned event log.

Each scenario runs with its own seed; its event-log SHA-256, event count, metrics and target
table are compared with ``tests/testdata/golden/<scenario>-seed<seed>.json``. Any behaviour change
fails here with the list of what moved. When the change is intended, update the files with

    .venv/bin/novacron golden --update

and commit them together with the change that explains it (``novacron golden`` alone compares).
"""

from __future__ import annotations

import pytest

from novacron.app.cli import golden_run
from novacron.app.golden import GOLDEN_SCENARIOS, UPDATE_COMMAND, differences, failure_message, load_golden


@pytest.mark.parametrize("scenario", GOLDEN_SCENARIOS)
def test_run_matches_its_golden_event_log(scenario: str) -> None:
    actual = golden_run(scenario)
    seed = int(actual["seed"])  # type: ignore[call-overload]
    expected = load_golden(scenario, seed)
    assert expected is not None, f"no golden file for {scenario} seed {seed}; create it with `{UPDATE_COMMAND}`"
    found = differences(expected, actual)
    assert not found, failure_message(scenario, seed, found)


def test_a_moved_metric_is_named_in_the_failure() -> None:
    expected = {"events": 3, "events_sha256": "a" * 64, "metrics": {"raft.failover_ms": 120.0, "x": 1.0},
                "targets": {"failover": {"measured": 120.0, "status": "pass"}}}
    actual = {"events": 4, "events_sha256": "b" * 64, "metrics": {"raft.failover_ms": 180.0, "x": 1.0},
              "targets": {"failover": {"measured": 180.0, "status": "pass"}}}
    message = failure_message("default", 7, differences(expected, actual))
    assert "metric raft.failover_ms: 120 -> 180" in message and "target failover: 120 (pass) -> 180 (pass)" in message
    assert "events: 3 -> 4" in message and UPDATE_COMMAND in message and "metric x" not in message
