"""Injected faults in the simulation: labelled in the log, visible in the telemetry, detected, acted
on, deterministic by seed (``sim.injected_faults``, ``sim.anomaly_response``, ``novacron faults``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from novacron.anomaly.events import (
    FAULT_KINDS,
    AnomalyDetected,
    FaultCleared,
    FaultInjected,
    HostDevicesSampled,
    ManagerHeartbeatsSampled,
    RemediationFinished,
    RemediationStarted,
)
from novacron.anomaly.fault_scoring import KindScore, alerts_from_events, faults_from_events, score_faults
from novacron.app.cli import main
from novacron.app.eventstore import event_log_sha256
from novacron.cluster.events import HostUtilisationSampled, InjectedFaultStarted, VMMoved, VMPlaced
from novacron.events import Event
from novacron.scenario import Scenario, resolve_scenario
from sim.anomaly_response import ACTIONS
from sim.fault_run import run_with_faults

SEED = 7


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return resolve_scenario("faults-small")[0]


@pytest.fixture(scope="module")
def acted(scenario: Scenario) -> list[Event]:
    return list(run_with_faults(scenario, SEED).log)


@pytest.fixture(scope="module")
def watched_only(scenario: Scenario) -> list[Event]:
    return list(run_with_faults(scenario, SEED, act=False).log)


def scores(events: Sequence[Event], scenario: Scenario) -> dict[str, KindScore]:
    return score_faults(faults_from_events(events, scenario.duration_s), alerts_from_events(events), 600.0)


def test_every_fault_is_labelled_with_its_kind_subject_start_and_end(acted: list[Event]) -> None:
    injected = [e for e in acted if isinstance(e, FaultInjected)]
    cleared = {e.fault_id: e for e in acted if isinstance(e, FaultCleared)}
    assert sorted({e.fault_kind for e in injected}) == sorted(FAULT_KINDS)
    assert len(injected) == 4 * len(FAULT_KINDS)
    host_of: dict[str, str] = {}
    for ev in acted:
        if isinstance(ev, VMPlaced | VMMoved):
            host_of[ev.vm_id] = ev.host_id
        elif isinstance(ev, FaultInjected):
            assert ev.fault_id in cleared and cleared[ev.fault_id].t_s > ev.t_s
            assert cleared[ev.fault_id].t_s <= ev.t_s + ev.planned_duration_s + 1e-6
            if ev.fault_kind in ("memory_leak", "noisy_neighbour"):
                assert ev.vm_id and host_of[ev.vm_id] == ev.host_id, "a VM's fault is labelled with its host"
            elif ev.fault_kind == "flapping_manager":
                assert ev.fault_target.startswith("manager-") and not ev.host_id
            else:
                assert ev.host_id == ev.fault_target and not ev.vm_id


def series(events: Sequence[Event], fault: FaultInjected, end_s: float,
           other_faults_s: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The fault's telemetry series during the fault, and in the six hours before it outside
    ``other_faults_s`` (the same subject's other faults)."""
    def value(ev: Event) -> float | None:
        if fault.fault_kind == "flapping_manager":
            wanted = int(fault.fault_target.rsplit("-", 1)[1])
            mine = isinstance(ev, ManagerHeartbeatsSampled) and ev.manager_id == wanted
            return ev.heartbeat_loss_pct if mine else None
        if fault.fault_kind == "noisy_neighbour":
            mine = isinstance(ev, HostUtilisationSampled) and ev.host_id == fault.host_id
            return ev.cpu_demand_pct if mine else None
        if not isinstance(ev, HostDevicesSampled) or ev.host_id != fault.host_id:
            return None
        return {"memory_leak": ev.memory_used_pct, "degraded_nic": ev.nic_retransmit_pct,
                "slow_disk": ev.disk_latency_ms}.get(fault.fault_kind)

    points = [(ev.t_s, v) for ev in events if (v := value(ev)) is not None]
    return ([v for t, v in points if fault.t_s < t <= end_s],
            [v for t, v in points if fault.t_s - 6 * 3600 < t <= fault.t_s
             and not any(start < t <= end + 600 for start, end in other_faults_s)])


def test_each_fault_shows_in_the_telemetry_the_detector_watches(watched_only: list[Event]) -> None:
    ends = {e.fault_id: e.t_s for e in watched_only if isinstance(e, FaultCleared)}
    faults = [e for e in watched_only if isinstance(e, FaultInjected)]
    for fault in faults:
        others = [(f.t_s, ends[f.fault_id]) for f in faults
                  if f.fault_target == fault.fault_target and f.host_id == fault.host_id and f is not fault]
        during, before = series(watched_only, fault, ends[fault.fault_id], others)
        assert during and before, fault
        if fault.fault_kind == "memory_leak":
            assert during[-1] - before[-1] > 1.0, f"{fault}: the host's used memory grows (percent of the host)"
        elif fault.fault_kind == "noisy_neighbour":
            assert np.median(during) > np.median(before) + 5.0, fault
        else:
            assert np.mean(during) > 3 * np.mean(before), fault  # a flapping manager is down 1 sample in 2


def test_alerts_become_actions_and_actions_remove_causes(acted: list[Event], watched_only: list[Event]) -> None:
    alerts = {e.alert_id: e for e in acted if isinstance(e, AnomalyDetected)}
    started = [e for e in acted if isinstance(e, RemediationStarted)]
    assert started and {e.alert_id for e in started} <= set(alerts)
    for ev in started:
        assert ev.action == ACTIONS[alerts[ev.alert_id].diagnosis] and ev.subject == alerts[ev.alert_id].subject
    finished = {e.alert_id: e for e in acted if isinstance(e, RemediationFinished)}
    drains = [finished[e.alert_id] for e in started if e.action == "drain_host" and e.alert_id in finished]
    assert drains, "a slow disk or a degraded NIC was acted on"
    moved_off = {(e.from_host_id, e.source) for e in acted if isinstance(e, VMMoved)}
    assert all((d.subject, "responder") in moved_off for d in drains if not d.outcome.startswith("drained: 0"))
    removed = {e.fault_kind for e in acted if isinstance(e, FaultCleared) and e.cleared_by == "remediated"}
    assert {"flapping_manager", "noisy_neighbour"} <= removed
    assert not any(isinstance(e, RemediationStarted | RemediationFinished | VMMoved) for e in watched_only)
    assert not any(isinstance(e, FaultCleared) and e.cleared_by == "remediated" for e in watched_only)
    crashes = [e for e in acted if isinstance(e, InjectedFaultStarted) and e.fault_kind == "manager_crash"]
    assert crashes, "a flapping manager's crashes are the hook events a Raft-backed control plane follows"


def test_the_detector_finds_the_clear_cut_faults(acted: list[Event], scenario: Scenario) -> None:
    """Not a benchmark (that is benchmarks/RESULTS_anomaly.md): a floor that catches a monitor
    wired to the wrong series or a responder that acts before anything was detected."""
    table = scores(acted, scenario)
    for kind in ("degraded_nic", "slow_disk", "flapping_manager"):
        assert table[kind].recall >= 0.75 and table[kind].precision >= 0.75, table[kind]


def test_a_run_is_a_function_of_its_seed(acted: list[Event], scenario: Scenario) -> None:
    again = list(run_with_faults(scenario, SEED).log)
    assert event_log_sha256(again) == event_log_sha256(acted)
    assert scores(again, scenario) == scores(acted, scenario)
    other = list(run_with_faults(scenario, SEED + 1).log)
    assert event_log_sha256(other) != event_log_sha256(acted)


@pytest.mark.parametrize(("args", "message"), [
    (["--grace", "-1"], "--grace -1.0: allowed: 0 or more seconds"),
    (["--param", "nonsense=3"], "has no hyperparameter 'nonsense'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults", *args]) == 2
    assert message in capsys.readouterr().err
