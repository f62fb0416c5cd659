"""Streaming, unsupervised anomaly detectors: each point is scored from the points before it only.

Theory of operation
-------------------
A detector is fed one value at a time (``score(value) -> float``): it returns the anomaly score of
that value computed from the past (its state before the value), then learns the value. Scores are
comparable within one detector across series, so one threshold serves a whole corpus (NAB's rule).

- ``RobustWindow`` (the baseline): how many robust standard deviations (1.4826 x MAD) the value
  lies from the median of the last ``window_points`` values. Median and MAD ignore the spikes a
  mean and a standard deviation would absorb.
- ``NovaDetector`` (the project's own): three robust deviations -- of the value, of the mean of
  the last few values (a level shift too small for any one point), and of the value's change (a
  spike against a noisy but steady level) -- each measured against a long trailing window; the
  largest is turned into an *anomaly likelihood* (Ahmad et al. 2017): how improbable the recent
  average of the raw deviation is under the Gaussian fitted to the raw deviations of a long past.
  That normalises every series to its own usual turbulence, so one threshold fits a flat line, a
  noisy daily cycle and a bursty counter alike. After the likelihood crosses ``alarm_level`` the
  detector stays quiet for ``quiet_points``: one alarm per incident (NAB charges every false
  positive but credits only a window's first detection).

The library-backed detectors (statsmodels STL, river half-space trees) are in
``novacron.anomaly.library``; ``novacron.anomaly.registry`` names all of them with their
hyperparameters.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
MIN_PERIOD_POINTS, MAX_PERIOD_POINTS = 4, 288
"""A daily period in points, clamped: 288 is a day at five-minute samples (most of NAB)."""
MAD_TO_SIGMA = 1.4826
"""For Gaussian data, sigma = 1.4826 x the median absolute deviation."""


class Detector(Protocol):
    def score(self, value: float) -> float:
        """The anomaly score of ``value`` from the past only; then learn it."""
        ...


def score_series(detector: Detector, values: FloatArray) -> FloatArray:
    return np.fromiter((detector.score(float(v)) for v in values), dtype=np.float64, count=len(values))


class Ring:
    """The last ``size`` values, as a numpy array (oldest first once full)."""

    __slots__ = ("_buf", "_n", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._buf = np.zeros(size)
        self._n = 0

    def push(self, value: float) -> None:
        self._buf[self._n % self.size] = value
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, self.size)

    def values(self) -> FloatArray:
        return self._buf if self._n >= self.size else self._buf[: self._n]

    def same_phase(self, period: int) -> list[float]:
        """The values 1, 2, ... periods before the next one, as far back as the ring reaches."""
        return [float(self._buf[(self._n - k * period) % self.size])
                for k in range(1, self.size // period + 1) if self._n - k * period >= 0]


def robust_deviation(value: float, past: FloatArray, floor: float) -> float:
    """|value - median| in robust standard deviations of ``past`` (never dividing by less than ``floor``)."""
    median = float(np.median(past))
    mad = float(np.median(np.abs(past - median)))
    return abs(value - median) / max(MAD_TO_SIGMA * mad, floor)


def scale_floor(past: FloatArray) -> float:
    """A spread below which a flat series' tiny wiggles do not count: 0.1 % of its range, or 1e-9."""
    return max(1e-3 * float(np.ptp(past)), 1e-9) if past.size else 1e-9


@dataclass(slots=True)
class RobustWindow:
    """Robust z-score against a trailing window; scores in [0, 1) (z / (1 + z))."""

    window_points: int = 288
    min_points: int = 20
    _past: Ring = field(init=False)

    def __post_init__(self) -> None:
        self._past = Ring(self.window_points)

    def score(self, value: float) -> float:
        past = self._past.values()
        z = robust_deviation(value, past, scale_floor(past)) if len(past) >= self.min_points else 0.0
        self._past.push(value)
        return z / (1.0 + z)


class RollingMax:
    """The maximum of the last ``size`` values pushed (a monotonic deque: O(1) amortised)."""

    __slots__ = ("_deque", "_n", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._deque: deque[tuple[int, float]] = deque()
        self._n = 0

    def push(self, value: float) -> None:
        while self._deque and self._deque[-1][1] <= value:
            self._deque.pop()
        self._deque.append((self._n, value))
        self._n += 1
        while self._deque[0][0] <= self._n - 1 - self.size:
            self._deque.popleft()

    def max(self) -> float:
        return self._deque[0][1] if self._deque else 0.0


class RunningMean:
    """The mean of the last ``size`` values pushed."""

    __slots__ = ("_sum", "_values")

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._sum = 0.0

    def push(self, value: float) -> float:
        if len(self._values) == self._values.maxlen:
            self._sum -= self._values[0]
        self._values.append(value)
        self._sum += value
        return self._sum / len(self._values)


@dataclass(slots=True)
class SeasonalDeviation:
    """The signed robust deviation of a value from a seasonal-naive forecast: the median of the
    values one, two and three periods earlier. Measured against the forecast's own recent errors,
    so a daily cycle is not an anomaly and a series without one is simply differenced by a day."""

    period_points: int
    window_points: int
    min_points: int = 30
    _values: Ring = field(init=False)
    _residuals: Ring = field(init=False)
    _history: Ring = field(init=False)

    def __post_init__(self) -> None:
        self._values = Ring(self.window_points)
        self._residuals = Ring(self.window_points)
        self._history = Ring(3 * self.period_points)

    def update(self, value: float) -> tuple[float, float, float]:
        """The seasonal deviation of ``value``; the robust spread of the trailing values (NaN until
        ``min_points`` are in) and the floor below which a spread is a flat line's wiggle."""
        past = self._values.values()
        floor = scale_floor(past)
        spread = math.nan
        if len(past) >= self.min_points:
            spread = MAD_TO_SIGMA * float(np.median(np.abs(past - np.median(past))))
        deviation = 0.0
        earlier = self._history.same_phase(self.period_points)
        if earlier:
            residual = value - float(np.median(earlier))
            errors = self._residuals.values()
            if len(errors) >= self.min_points:
                centre = float(np.median(errors))
                error_spread = MAD_TO_SIGMA * float(np.median(np.abs(errors - centre)))
                deviation = (residual - centre) / max(error_spread, floor)
            self._residuals.push(residual)
        self._values.push(value)
        self._history.push(value)
        return deviation, spread, floor


@dataclass(slots=True)
class NovaDetector:
    """The project's own detector (see the module docstring)."""

    period_points: int = 288
    window_points: int = 600
    level_points: tuple[int, ...] = (6, 24, 96)
    volatility_points: int = 12
    record_points: int = 2000
    quiet_points: int = 50
    min_points: int = 100
    _seasonal: SeasonalDeviation = field(init=False)
    _levels: list[RunningMean] = field(init=False)
    _recent: Ring = field(init=False)
    _records: list[RollingMax] = field(init=False)
    _seen: int = field(init=False, default=0)
    _quiet_left: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._seasonal = SeasonalDeviation(period_points=self.period_points, window_points=self.window_points)
        self._levels = [RunningMean(k) for k in self.level_points]
        self._recent = Ring(self.volatility_points)
        self._records = [RollingMax(self.record_points) for _ in range(2 + len(self.level_points))]

    def score(self, value: float) -> float:
        ratio = 0.0
        for signal, record in zip(self._signals(value), self._records, strict=True):
            surprise = math.log1p(signal)
            if self._seen >= self.min_points:
                ratio = max(ratio, surprise / max(record.max(), 1e-9))
            record.push(surprise)
        self._seen += 1
        if self._quiet_left > 0:
            self._quiet_left -= 1
            return 0.0
        if ratio > 1.0:  # a new record (a tie, as on a flat line, is not one)
            self._quiet_left = self.quiet_points
        return ratio / (1.0 + ratio)

    def _signals(self, value: float) -> list[float]:
        """Non-negative deviations: the value's, the levels' (means over longer spans, scaled so
        that a sustained shift of one spread counts like a single point of a few), the volatility's."""
        deviation, spread, floor = self._seasonal.update(value)
        signals = [abs(deviation)]
        for k, level in zip(self.level_points, self._levels, strict=True):
            shrink = 2.0 if k < 24 else 4.0
            signals.append(abs(level.push(deviation)) * math.sqrt(k) / shrink)
        self._recent.push(value)
        recent = self._recent.values()
        volatility = float(np.std(recent, ddof=1)) if len(recent) >= 2 else 0.0
        # Volatility against the usual spread, both lifted by the floor: a flat line stays at 0.
        signals.append(0.0 if math.isnan(spread) else abs(math.log((volatility + floor) / (spread + floor))))
        return signals


@dataclass(slots=True)
class RecordAlarm:
    """``NovaDetector``'s alarm stage around any detector, as an ablation: the inner score over the
    maximum of its last ``record_points`` scores, then ``quiet_points`` of silence after a new record.
    Scores are compared as given (any monotone scale), so it suits every detector here."""

    inner: Detector
    record_points: int = 2000
    quiet_points: int = 50
    min_points: int = 100
    _record: RollingMax = field(init=False)
    _seen: int = field(init=False, default=0)
    _quiet_left: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._record = RollingMax(self.record_points)

    def score(self, value: float) -> float:
        raw = self.inner.score(value)
        ratio = raw / max(self._record.max(), 1e-12) if self._seen >= self.min_points else 0.0
        self._record.push(raw)
        self._seen += 1
        if self._quiet_left > 0:
            self._quiet_left -= 1
            return 0.0
        if ratio > 1.0:
            self._quiet_left = self.quiet_points
        return ratio / (1.0 + ratio)

