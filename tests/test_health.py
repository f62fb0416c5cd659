"""The node health score (0-100): each input moves it the way the documented formula says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.health import (
    CONNECTIVITY_POINTS,
    PRESSURE_POINTS,
    RELIABILITY_POINTS,
    HealthTracker,
    leadership_target,
)


def healthy() -> HealthTracker:
    tracker = HealthTracker()
    for _ in range(20):
        tracker.heartbeat(2.0)
    tracker.resources(cpu_pct=30.0, memory_pct=40.0)
    return tracker


def test_a_healthy_node_scores_100() -> None:
    assert healthy().score(0.0).total == pytest.approx(100.0)


def test_a_new_node_is_neither_preferred_nor_excluded() -> None:
    score = HealthTracker().score(0.0)
    assert score.connectivity == CONNECTIVITY_POINTS / 2
    assert score.total == pytest.approx(100.0 - CONNECTIVITY_POINTS / 2)


def test_heartbeat_loss_lowers_connectivity_quadratically() -> None:
    tracker = healthy()
    for i in range(200):
        tracker.heartbeat(None if i % 10 == 0 else 2.0)  # 10 % lost
    connectivity = tracker.score(0.0).connectivity
    assert 0.6 * CONNECTIVITY_POINTS < connectivity < 0.9 * CONNECTIVITY_POINTS


def test_round_trip_near_the_election_timeout_scores_no_connectivity() -> None:
    tracker = healthy()
    for _ in range(100):
        tracker.heartbeat(160.0)
    assert tracker.score(0.0).connectivity == pytest.approx(0.0, abs=1e-6)


def test_a_node_that_answers_nothing_has_no_connectivity() -> None:
    tracker = HealthTracker()
    tracker.heartbeat(None)
    assert tracker.score(0.0).connectivity == 0.0


def test_pressure_counts_the_worse_resource_against_its_target() -> None:
    tracker = healthy()
    tracker.resources(cpu_pct=70.0, memory_pct=75.0)  # at the targets less 10 % headroom: still full
    assert tracker.score(0.0).pressure == PRESSURE_POINTS
    tracker.resources(cpu_pct=30.0, memory_pct=100.0)
    assert tracker.score(0.0).pressure == 0.0
    tracker.resources(cpu_pct=85.0, memory_pct=30.0)  # halfway from 70 % to 100 %
    assert tracker.score(0.0).pressure == pytest.approx(PRESSURE_POINTS / 2)


def test_crashes_cost_more_than_errors_and_are_forgiven_with_time() -> None:
    errored, crashed = healthy(), healthy()
    errored.error(100.0)
    crashed.crash(100.0)
    assert crashed.score(100.0).reliability < errored.score(100.0).reliability < RELIABILITY_POINTS
    an_hour_later = crashed.score(100.0 + 3600.0).reliability
    assert an_hour_later == pytest.approx(RELIABILITY_POINTS - crashed.crash_points / 2)
    for k in range(5):
        crashed.crash(200.0 + k)
    assert crashed.score(205.0).reliability == 0.0  # capped: never below 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0.0, 1e4)), max_size=50), st.floats(0, 200), st.floats(0, 200),
       st.lists(st.floats(0, 1e6), max_size=10))
def test_the_score_stays_within_0_and_100(heartbeats: list[float | None], cpu: float, memory: float,
                                          crashes: list[float]) -> None:
    tracker = HealthTracker()
    for rtt in heartbeats:
        tracker.heartbeat(rtt)
    tracker.resources(cpu_pct=cpu, memory_pct=memory)
    for t in sorted(crashes):
        tracker.crash(t)
    score = tracker.score(1e6)
    assert 0.0 <= score.total <= 100.0
    assert score.total == pytest.approx(score.connectivity + score.pressure + score.reliability)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="good_rtt_ms"):
        HealthTracker(good_rtt_ms=200.0, bad_rtt_ms=150.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.floats(0.0, 1.0)), min_size=1, max_size=10))
def test_a_window_of_heartbeats_is_the_same_fold_as_its_heartbeats_when_they_agree(
        windows: list[tuple[int, float]]) -> None:
    one_by_one, windowed = HealthTracker(), HealthTracker()
    for sent, lost_share in windows:
        lost = sent if lost_share > 0.5 else 0  # all lost or all answered: the closed form is exact
        for _ in range(sent):
            one_by_one.heartbeat(None if lost else 20.0)
        windowed.heartbeat_window(sent=sent, lost=lost, rtt_ms=20.0)
    assert windowed.score(0.0).connectivity == pytest.approx(one_by_one.score(0.0).connectivity, abs=1e-9)


def test_a_window_with_losses_lowers_connectivity_by_its_share() -> None:
    tracker = healthy()
    tracker.heartbeat_window(sent=300, lost=30, rtt_ms=2.0)  # 10 % lost, long enough to forget the past
    assert tracker.score(0.0).connectivity == pytest.approx(CONNECTIVITY_POINTS * 0.9**2, rel=1e-6)
    with pytest.raises(ValueError, match="lost=5 of sent=3"):
        tracker.heartbeat_window(sent=3, lost=5, rtt_ms=2.0)


def test_leadership_goes_to_the_healthiest_voter_only_when_the_leader_is_ill_and_clearly_worse() -> None:
    assert leadership_target({1: 50.0, 2: 95.0, 3: 85.0}, 1, min_score=70.0, margin=10.0) == 2
    assert leadership_target({1: 75.0, 2: 99.0, 3: 85.0}, 1, min_score=70.0, margin=10.0) is None, "healthy enough"
    assert leadership_target({1: 65.0, 2: 72.0}, 1, min_score=70.0, margin=10.0) is None, "not clearly better"
    assert leadership_target({1: 40.0, 2: 60.0}, 1, min_score=70.0, margin=10.0) is None, "no healthy peer"
    assert leadership_target({1: 40.0, 2: 90.0, 3: 90.0}, 1, min_score=70.0, margin=10.0) == 2, "ties: lowest id"
    assert leadership_target({2: 90.0}, 1, min_score=70.0, margin=10.0) is None, "an unscored leader stays"
