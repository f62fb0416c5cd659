"""The injected-fault scorer (``novacron.anomaly.fault_scoring``): the matching window's boundaries,
a perfect and a silent detector, and planted off-by-one matchers that the boundary test must catch."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.anomaly import fault_scoring
from novacron.anomaly.events import FAULT_KINDS
from novacron.anomaly.fault_scoring import Alert, LabelledFault, format_table, score_faults

SAMPLE_S = 300.0
GRACE_S = 600.0
FAULT = LabelledFault(fault_id="f1", kind="slow_disk", subject="host-0003", start_s=3000.0, end_s=6000.0)


def alert(t_s: float, subject: str = "host-0003", diagnosis: str = "slow_disk") -> Alert:
    return Alert(t_s=t_s, subject=subject, diagnosis=diagnosis)


BOUNDARY_CASES = [
    (FAULT.start_s - SAMPLE_S, False, "one sample before the start"),
    (FAULT.start_s, True, "at the start"),
    (FAULT.end_s, True, "at the end"),
    (FAULT.end_s + GRACE_S, True, "at the end of the grace"),
    (FAULT.end_s + GRACE_S + SAMPLE_S, False, "one sample after the grace"),
]


def boundary_failures() -> list[str]:
    """The boundary cases the scorer gets wrong (each case alone: one fault, one alert)."""
    wrong = []
    for t_s, expected, name in BOUNDARY_CASES:
        score = score_faults([FAULT], [alert(t_s)], GRACE_S)["slow_disk"]
        if (score.detected == 1) != expected or (score.true_alerts == 1) != expected:
            wrong.append(name)
    return wrong


def test_the_matching_window_is_closed_from_start_to_end_plus_grace() -> None:
    assert boundary_failures() == []


def test_only_the_same_subject_and_diagnosis_match() -> None:
    scores = score_faults([FAULT], [alert(4000.0, subject="host-0004"), alert(4000.0, diagnosis="degraded_nic")],
                          GRACE_S)
    assert scores["slow_disk"].detected == 0 and scores["degraded_nic"].true_alerts == 0


@pytest.mark.parametrize(("name", "mutant"), [
    ("strict start", lambda a, f, g: a.subject == f.subject and a.diagnosis == f.kind
     and f.start_s < a.t_s <= f.end_s + g),
    ("start a sample early", lambda a, f, g: a.subject == f.subject and a.diagnosis == f.kind
     and f.start_s - SAMPLE_S <= a.t_s <= f.end_s + g),
    ("grace forgotten", lambda a, f, g: a.subject == f.subject and a.diagnosis == f.kind
     and f.start_s <= a.t_s <= f.end_s),
    ("strict end of grace", lambda a, f, g: a.subject == f.subject and a.diagnosis == f.kind
     and f.start_s <= a.t_s < f.end_s + g),
    ("grace a sample long", lambda a, f, g: a.subject == f.subject and a.diagnosis == f.kind
     and f.start_s <= a.t_s <= f.end_s + g + SAMPLE_S),
])
def test_a_planted_off_by_one_in_matching_is_caught(monkeypatch: pytest.MonkeyPatch, name: str,
                                                    mutant: Callable[[Alert, LabelledFault, float], bool]) -> None:
    monkeypatch.setattr(fault_scoring, "matches", mutant)
    assert boundary_failures(), f"the boundary test did not catch the planted bug ({name})"


faults_strategy = st.lists(
    st.builds(lambda k, h, start, length: (k, h, start, length), st.sampled_from(FAULT_KINDS),
              st.integers(0, 5), st.floats(0, 1e5), st.floats(0, 1e4)), min_size=1, max_size=12)


def labelled(rows: list[tuple[str, int, float, float]]) -> list[LabelledFault]:
    return [LabelledFault(fault_id=f"f{i}", kind=k, subject=f"host-{h}", start_s=start, end_s=start + length)
            for i, (k, h, start, length) in enumerate(rows)]


@settings(max_examples=60, deadline=None)
@given(faults_strategy, st.floats(0, 1e3))
def test_a_perfect_detector_scores_f1_one_with_no_delay(rows: list[tuple[str, int, float, float]],
                                                       grace_s: float) -> None:
    faults = labelled(rows)
    perfect = [Alert(t_s=f.start_s, subject=f.subject, diagnosis=f.kind) for f in faults]
    for kind, s in score_faults(faults, perfect, grace_s).items():
        if s.faults:
            assert (s.precision, s.recall, s.f1, s.mean_delay_s) == (1.0, 1.0, 1.0, 0.0), kind
        else:
            assert s.alerts == 0 and s.f1 == 0.0


@settings(max_examples=60, deadline=None)
@given(faults_strategy, st.floats(0, 1e3))
def test_a_silent_detector_scores_zero(rows: list[tuple[str, int, float, float]], grace_s: float) -> None:
    for s in score_faults(labelled(rows), [], grace_s).values():
        assert (s.precision, s.recall, s.f1, s.detected) == (0.0, 0.0, 0.0, 0) and math.isnan(s.mean_delay_s)


def test_delay_is_the_first_matching_alert_and_false_alerts_cost_precision() -> None:
    other = LabelledFault(fault_id="f2", kind="slow_disk", subject="host-0001", start_s=0.0, end_s=100.0)
    alerts = [alert(5000.0), alert(3600.0), alert(50_000.0), alert(50.0, subject="host-0001")]
    s = score_faults([FAULT, other], alerts, GRACE_S)["slow_disk"]
    assert (s.detected, s.alerts, s.true_alerts) == (2, 4, 3)
    assert s.mean_delay_s == pytest.approx((600.0 + 50.0) / 2)
    assert s.precision == pytest.approx(0.75) and s.recall == 1.0 and s.f1 == pytest.approx(2 * 0.75 / 1.75)
    assert "| slow_disk | 2 | 2 | 4 | 3 | 0.75 | 1.00 | 0.86 | 325 |" in format_table({"slow_disk": s})


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace_s=-1"):
        score_faults([FAULT], [], -1.0)
