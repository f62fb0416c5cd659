"""How long a VM request waits for its answer: the rejected share counts answered requests only, so
a control plane that stops answering (no quorum) rejects nothing; the longest wait catches it."""

from __future__ import annotations

from pathlib import Path

from novacron.cluster.events import RunFinished, VMPlaced, VMRejected, VMRequested
from novacron.events import Event
from novacron.metrics import PlacementFold
from novacron.streaming import EventsByType, fold_events
from tests.test_scenario_fuzz import _run, _verdicts


def _asked(t_s: float, seq: int, vm: str) -> VMRequested:
    return VMRequested(t_s=t_s, seq=seq, source="t", vm_id=vm, cpu_cores=1, memory_gib=1.0)


def _placed(t_s: float, seq: int, vm: str) -> VMPlaced:
    return VMPlaced(t_s=t_s, seq=seq, source="t", vm_id=vm, host_id="h", cpu_cores=1, memory_gib=1.0,
                    decision_ms=0.1)


def _fold(events: list[Event]) -> dict[str, float]:
    return fold_events(PlacementFold(), EventsByType(events))


def test_an_unanswered_request_waits_until_the_run_ends() -> None:
    metrics = _fold([_asked(1.0, 1, "a"), _placed(1.5, 2, "a"), _asked(2.0, 3, "b"),
                     RunFinished(t_s=62.0, seq=4, source="t", duration_s=62.0)])
    assert metrics["cluster.vm_answer_wait_max_ms"] == 60_000.0
    assert metrics["cluster.vms_unanswered"] == 1 and metrics["cluster.vms_rejected_pct"] == 0.0


def test_a_late_answer_counts_and_a_restart_answers_no_request() -> None:
    metrics = _fold([_asked(1.0, 1, "a"), VMRejected(t_s=41.0, seq=2, source="t", vm_id="a", reason="full"),
                     _asked(50.0, 3, "b"), _placed(50.2, 4, "b"), _placed(500.0, 5, "b")])
    assert metrics["cluster.vm_answer_wait_max_ms"] == 40_000.0


def test_without_the_run_s_end_a_request_still_waiting_is_not_measured() -> None:
    """A log cut short (or a simulation asked mid-run): how long the waiting request waits is unknown."""
    assert "cluster.vm_answer_wait_max_ms" not in _fold([_asked(1.0, 1, "a")])
    assert "cluster.vm_answer_wait_max_ms" not in _fold([_asked(1.0, 1, "a"), _asked(3.0, 2, "b"),
                                                        _placed(11.0, 3, "b")])
    answered = _fold([_asked(1.0, 1, "a"), _placed(4.0, 2, "a")])
    assert answered["cluster.vm_answer_wait_max_ms"] == 3_000.0


def test_no_request_measures_no_wait() -> None:
    assert "cluster.vm_answer_wait_max_ms" not in _fold([])


NO_QUORUM = """
name = "no-quorum"
seed = 3
duration_s = 120.0
[cluster]
hosts = 4
[workload]
vms = 30
arrival_window_s = 60.0
[cache]
enabled = false
[migration]
migrations = 0
[raft]
control_plane = "raft"
managers = 2
network = "lan"
leader_crash_at_s = 5.0
restart_after_s = 86400.0
partition_at_s = 0.0
"""


def test_managers_that_lose_their_quorum_fail_the_run_though_they_reject_nothing(tmp_path: Path) -> None:
    """Two managers, the leader crashes for good at 5 s: every request after it waits until the end."""
    summary = _run(NO_QUORUM, tmp_path)
    metrics = summary["metrics"]
    verdicts = _verdicts(summary)
    assert metrics["cluster.vms_unanswered"] > 0, metrics  # type: ignore[index]
    assert metrics["cluster.vms_rejected"] == 0, metrics  # type: ignore[index]
    assert verdicts["cluster.vms_rejected_pct"] == "pass"
    assert verdicts["cluster.vm_answer_wait_max_ms"] == "fail"
    assert summary["passed"] is False


def test_the_same_cluster_with_its_leader_back_in_time_passes_the_wait(tmp_path: Path) -> None:
    summary = _run(NO_QUORUM.replace("restart_after_s = 86400.0", "restart_after_s = 10.0"), tmp_path)
    assert summary["metrics"]["cluster.vms_unanswered"] == 0  # type: ignore[index]
    assert _verdicts(summary)["cluster.vm_answer_wait_max_ms"] == "pass"


def test_large_measured_values_print_with_separators_not_exponents() -> None:
    from novacron.slo import format_measured

    assert format_measured(3_593_008.4, "ms") == "3,593,008 ms"
    assert format_measured(9999.7, "ms") == "10,000 ms"
    assert format_measured(9999.4, "ms") == "9999 ms"
    assert format_measured(264.9, "ms") == "264.9 ms"
