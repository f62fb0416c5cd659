"""Detectors built on maintained libraries: statsmodels' STL and river's half-space trees.

Theory of operation
-------------------
Both libraries are imported lazily (``pip install 'novacron[anomaly]'``), so the core imports
without them; both detectors keep the streaming contract of ``novacron.anomaly.detectors``.

- ``StlResidual`` (seasonal): every ``refit_points`` it decomposes the last ``fit_days`` days with
  STL (seasonal-trend decomposition by loess, Cleveland et al. 1990; statsmodels ``STL``) at a
  daily period, and until the next refit forecasts each value as the last trend value plus the
  seasonal component one period earlier. The loess fits are evaluated every ``loess_jump_points``
  and interpolated between (statsmodels' ``*_jump``): about ten times faster at a daily period
  of 288 points, for smoothers that span hundreds of points anyway. The anomaly score is the
  robust deviation of the forecast's residual against the residuals of the trailing window.
  Until two periods have been seen it scores the value against the trailing window instead.
- ``HalfSpaceTreesDetector``: river's ``HalfSpaceTrees`` (Tan, Ting and Liu 2011) on the value and
  its change, each scaled to [0, 1] by a running min-max scaler; it scores a point, then learns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novacron.anomaly.detectors import Detector, Ring, robust_deviation, scale_floor

MIN_PERIOD_POINTS = 4


@dataclass(slots=True)
class StlResidual:
    """Robust z-score of the residual of an STL forecast (see the module docstring)."""

    period_points: int
    fit_days: int = 3
    refit_points: int = 48
    loess_jump_points: int = 10
    residual_points: int = 288
    max_period_points: int = 288
    _values: Ring = field(init=False)
    _residuals: Ring = field(init=False)
    _seasonal: np.ndarray[Any, Any] | None = field(init=False, default=None)
    _trend: float = field(init=False, default=0.0)
    _since_fit: int = field(init=False, default=0)
    _seen: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.period_points = max(MIN_PERIOD_POINTS, min(self.period_points, self.max_period_points))
        self._values = Ring(self.fit_days * self.period_points)
        self._residuals = Ring(self.residual_points)

    def score(self, value: float) -> float:
        if self._seasonal is None:
            past = self._values.values()
            z = robust_deviation(value, past, scale_floor(past)) if len(past) >= 20 else 0.0
        else:
            forecast = self._trend + float(self._seasonal[self._since_fit % self.period_points])
            residual = value - forecast
            past = self._residuals.values()
            z = robust_deviation(residual, past, scale_floor(self._values.values())) if len(past) >= 20 else 0.0
            self._residuals.push(residual)
        self._values.push(value)
        self._seen += 1
        self._since_fit += 1
        if self._seen >= 2 * self.period_points and (self._seasonal is None or self._since_fit >= self.refit_points):
            self._fit()
        return z / (1.0 + z)

    def _fit(self) -> None:
        from statsmodels.tsa.seasonal import STL

        values = self._values.values()
        n = len(values)
        ordered = np.roll(values, -(self._seen % n)) if self._seen > n else values
        jump = max(1, min(self.loess_jump_points, self.period_points // 8))
        result = STL(ordered, period=self.period_points, robust=False, seasonal_jump=jump, trend_jump=jump,
                     low_pass_jump=jump).fit()
        # The next value continues the cycle one period after the oldest of the last period's points.
        self._seasonal = np.asarray(result.seasonal[-self.period_points:], dtype=np.float64)
        self._trend = float(result.trend[-1])
        self._since_fit = 0


def stl_residual(*, points_per_day: int, **params: Any) -> Detector:
    return StlResidual(period_points=points_per_day, **params)


@dataclass(slots=True)
class HalfSpaceTreesDetector:
    """river's half-space trees on (value, change), min-max scaled as river recommends."""

    n_trees: int = 25
    height: int = 12
    window_size: int = 250
    seed: int = 42
    _model: Any = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        from river import anomaly, compose, preprocessing

        self._model = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(n_trees=self.n_trees, height=self.height, window_size=self.window_size,
                                   seed=self.seed))

    def score(self, value: float) -> float:
        features = {"value": value, "change": 0.0 if self._last is None else value - self._last}
        score = float(self._model.score_one(features))
        self._model.learn_one(features)
        self._last = value
        return score


def half_space_trees(*, points_per_day: int, **params: Any) -> Detector:
    return HalfSpaceTreesDetector(**params)
