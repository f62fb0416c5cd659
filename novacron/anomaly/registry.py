"""Every detector by name, with the one set of hyperparameters it uses for every series."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from novacron.anomaly import library
from novacron.anomaly.detectors import (
    MAX_PERIOD_POINTS,
    MIN_PERIOD_POINTS,
    Detector,
    NovaDetector,
    RecordAlarm,
    RobustWindow,
)

Factory = Callable[..., Detector]


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorSpec:
    """A detector by name with its hyperparameters: the same for every series of a corpus.

    The only per-series fact a detector may receive is the sampling rate (``points_per_day``),
    which the seasonal detector needs for its period; it is known before any point is scored."""

    name: str
    params: tuple[tuple[str, float | int], ...] = ()

    def hyperparameters(self) -> dict[str, float | int]:
        """What ``params`` may set, with the current values: the detector's numeric settings, less the
        period (derived from the sampling)."""
        detector = self.build(points_per_day=288)
        return {f.name: getattr(detector, f.name) for f in fields(detector)  # type: ignore[arg-type]
                if f.init and f.name != "period_points" and isinstance(getattr(detector, f.name), int | float)}

    def build(self, *, points_per_day: int) -> Detector:
        factory = detector_factories()[self.name]
        return factory(points_per_day=points_per_day, **dict(self.params))


def _robust(*, points_per_day: int, **params: float | int) -> Detector:
    return RobustWindow(**params)  # type: ignore[arg-type]


def _nova(*, points_per_day: int, **params: float | int) -> Detector:
    period = max(MIN_PERIOD_POINTS, min(points_per_day, MAX_PERIOD_POINTS))
    return NovaDetector(period_points=period, **params)  # type: ignore[arg-type]


def _with_alarm(base: Factory) -> Factory:
    """``base`` inside ``RecordAlarm``: the alarm's own settings go to it, any other to ``base``."""
    alarm_settings = {"record_points", "quiet_points", "min_points"}

    def build(*, points_per_day: int, **params: float | int) -> Detector:
        inner = base(points_per_day=points_per_day, **{k: v for k, v in params.items() if k not in alarm_settings})
        return RecordAlarm(inner, **{k: v for k, v in params.items() if k in alarm_settings})  # type: ignore[arg-type]

    return build


def detector_factories() -> Mapping[str, Factory]:
    plain: dict[str, Factory] = {"robust_window": _robust, "stl_residual": library.stl_residual,
                                 "half_space_trees": library.half_space_trees}
    alarmed = {f"{name}+alarm": _with_alarm(factory) for name, factory in plain.items()}
    return MappingProxyType({**plain, **alarmed, "nova": _nova})


DETECTORS: Mapping[str, DetectorSpec] = MappingProxyType({
    "robust_window": DetectorSpec(name="robust_window", params=(("window_points", 288),)),
    "stl_residual": DetectorSpec(name="stl_residual"),
    "half_space_trees": DetectorSpec(name="half_space_trees"),
    "robust_window+alarm": DetectorSpec(name="robust_window+alarm", params=(("window_points", 288),)),
    "stl_residual+alarm": DetectorSpec(name="stl_residual+alarm"),
    "half_space_trees+alarm": DetectorSpec(name="half_space_trees+alarm"),
    "nova": DetectorSpec(name="nova"),
})
"""The detectors ``novacron nab`` runs, each with its one global set of hyperparameters. A
``+alarm`` variant wraps the detector in ``nova``'s alarm stage (``RecordAlarm``): an ablation that
separates what ``nova``'s signals contribute from what its alarm stage does."""
