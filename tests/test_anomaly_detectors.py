"""The streaming detectors: causal (a point's score never depends on a later point), and each one
finds what it is built for on hand-made series."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.anomaly.detectors import (
    Detector,
    NovaDetector,
    RobustWindow,
    RollingMax,
    SeasonalDeviation,
    score_series,
)
from novacron.anomaly.registry import DETECTORS

HAS_LIBRARIES = all(importlib.util.find_spec(m) is not None for m in ("statsmodels", "river"))
needs_libraries = pytest.mark.skipif(not HAS_LIBRARIES, reason="needs pip install 'novacron[anomaly]'")


def daily(days: int, *, period: int = 48, noise: float = 0.05, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * period)
    return 10.0 + np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(t.size)


def causality_violations(build: Callable[[np.ndarray], Detector], values: np.ndarray, cut: int) -> int:
    """How many of the first ``cut`` scores change when the points after ``cut`` change. ``build``
    is given the series it will be fed (an honest detector ignores it)."""
    full = score_series(build(values), values)
    altered = values.copy()
    altered[cut:] = altered[cut:][::-1] * 3.0 + 100.0
    again = score_series(build(altered), altered)
    return int(np.sum(full[:cut] != again[:cut]))


@dataclass(slots=True)
class PeekingDetector:
    """A planted bug: scores each point with the *next* one (fed in advance), as a batch detector
    that looked at the whole file would. The causality check must catch it."""

    values: np.ndarray
    _i: int = field(default=0)

    def score(self, value: float) -> float:
        nxt = self.values[min(self._i + 1, len(self.values) - 1)]
        self._i += 1
        return abs(nxt - value)


CORE_BUILDERS = {
    "robust_window": lambda _: DETECTORS["robust_window"].build(points_per_day=48),
    "nova": lambda _: DETECTORS["nova"].build(points_per_day=48),
    "robust_window+alarm": lambda _: DETECTORS["robust_window+alarm"].build(points_per_day=48),
}


@pytest.mark.parametrize("name", list(CORE_BUILDERS))
def test_core_detectors_score_each_point_from_the_past_only(name: str) -> None:
    values = daily(12)
    for cut in (10, 150, 400):
        assert causality_violations(CORE_BUILDERS[name], values, cut) == 0


@needs_libraries
@pytest.mark.parametrize("name", ["stl_residual", "half_space_trees"])
def test_library_detectors_score_each_point_from_the_past_only(name: str) -> None:
    values = daily(8)
    assert causality_violations(lambda _: DETECTORS[name].build(points_per_day=48), values, 250) == 0


def test_the_causality_check_catches_a_detector_that_peeks() -> None:
    values = daily(4)
    assert causality_violations(PeekingDetector, values, 100) > 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.integers(1, 30))
def test_rolling_max_is_the_max_of_the_last_values(values: list[float], size: int) -> None:
    rolling = RollingMax(size)
    for i, v in enumerate(values):
        rolling.push(v)
        assert rolling.max() == max(values[max(0, i - size + 1): i + 1])


def test_seasonal_deviation_ignores_the_daily_cycle_and_sees_a_break_in_it() -> None:
    values = daily(8, noise=0.01)
    values[324] += 0.5  # at the trough: within the daily range, but not at that hour
    seasonal = SeasonalDeviation(period_points=48, window_points=200)
    deviations = [seasonal.update(float(v))[0] for v in values]
    assert abs(deviations[324]) > 10.0
    assert max(abs(d) for i, d in enumerate(deviations[200:], 200) if i != 324) < 6.0
    # The plain robust z-score of the same point sees nothing special: the cycle swamps it.
    plain = score_series(RobustWindow(window_points=200), values)
    assert plain[324] < np.sort(plain[200:])[-20]


def test_nova_raises_its_highest_score_at_a_level_shift_and_then_stays_quiet() -> None:
    values = daily(60)  # 2880 points: the record history (2000 points) fills up, as after NAB's probation
    values[2500:] += 0.6
    scores = score_series(NovaDetector(period_points=48, quiet_points=20), values)
    assert int(np.argmax(scores[1500:])) + 1500 == 2500  # the shift itself, at once
    assert scores[2500] > 0.6  # a record broken by more than half (ratio 1.5)...
    noise = scores[1500:2500]
    assert noise.max() < 0.51  # ...where the noise's own records barely break the old ones
    assert np.all(scores[2501:2521] == 0.0)  # one alarm per incident: the quiet period


def test_nova_does_not_alarm_on_a_flat_line() -> None:
    assert np.all(score_series(NovaDetector(period_points=48), np.full(500, 3.0)) == 0.0)


def test_hyperparameters_are_the_numeric_settings() -> None:
    names = DETECTORS["nova"].hyperparameters()
    assert names["record_points"] == 2000
    assert "period_points" not in names and "level_points" not in names


def test_the_alarm_stage_keeps_one_alarm_per_incident_around_any_detector() -> None:
    values = daily(60)
    values[2500:2510] += 5.0  # a burst of ten anomalous points
    scores = score_series(DETECTORS["robust_window+alarm"].build(points_per_day=48), values)
    plain = score_series(DETECTORS["robust_window"].build(points_per_day=48), values)
    assert np.all(plain[2500:2510] > 0.8)  # the plain detector scores the whole burst high
    assert scores[2500] > 0.5 and np.all(scores[2501:2510] == 0.0)  # the wrapped one once
