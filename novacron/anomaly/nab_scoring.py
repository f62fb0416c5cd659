"""The Numenta Anomaly Benchmark's score, written from its published description.

Theory of operation
-------------------
Lavin and Ahmad (2015, arXiv:1510.03336) score a streaming detector on labelled series. Each
labelled anomaly is a *window* of points. A detector emits an anomaly score per point; a point is a
*detection* when its score reaches the threshold. Every point after the probationary period (the
first 15 % of a file, at most 750 points as in NAB's runner) gets a weight from a scaled sigmoid,
``sigma(y) = 2 / (1 + exp(5 y)) - 1``, of its relative position ``y``:

- inside a window of ``n`` points ending at index ``e``, ``y = -(e - i + 1) / n`` runs from -1 at
  the window's first point to just below 0 at its last, so ``sigma`` runs from 0.987 down to 0:
  only the first detection in a window counts, and counts ``tp_weight * sigma(y)``: earlier is
  better; a window without a detection counts ``-fn_weight``;
- outside any window, after a window of ``n`` points ending at ``e``, ``y = (i - e) / (n - 1)``:
  a false positive right after a window costs almost nothing, one far from it costs nearly
  ``fp_weight`` (``fp_weight * sigma(y)``, ``sigma`` tends to -1); before the first window a false
  positive costs ``fp_weight`` in full.

A corpus's raw score is the sum over its files. It is normalised so that the null detector (no
detections: every window missed) scores 0 and the perfect detector (one detection at each window's
first point) scores 100. The threshold is one number for the whole corpus, chosen per cost profile
to maximise that profile's score: ``sweep`` lowers it past every distinct anomaly score in turn,
keeping each window's best (earliest) detection and the running sum, in O(N log N).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROBATION_FRACTION = 0.15
PROBATION_CAP_POINTS = 750
"""NAB's runner caps the probationary period at 15 % of 5000 points (long files)."""
NO_WINDOW = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class CostProfile:
    """One of NAB's application profiles: the weights of its cost matrix."""

    name: str
    tp_weight: float
    fn_weight: float
    fp_weight: float


PROFILES: Mapping[str, CostProfile] = {
    p.name: p for p in (
        CostProfile(name="standard", tp_weight=1.0, fn_weight=1.0, fp_weight=0.11),
        CostProfile(name="reward_low_FP_rate", tp_weight=1.0, fn_weight=1.0, fp_weight=0.22),
        CostProfile(name="reward_low_FN_rate", tp_weight=1.0, fn_weight=2.0, fp_weight=0.11),
    )
}
"""NAB ``config/profiles.json`` (Lavin and Ahmad 2015, table 1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelledSeries:
    """A series' length and its anomaly windows as inclusive index ranges, sorted, disjoint."""

    name: str
    length: int
    windows: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        previous_end = -1
        for start, end in self.windows:
            if not previous_end < start <= end < self.length:
                raise ValueError(f"{self.name}: window ({start}, {end}) must be sorted, disjoint and inside "
                                 f"0..{self.length - 1}")
            previous_end = end

    @property
    def probation_points(self) -> int:
        return min(math.floor(PROBATION_FRACTION * self.length), PROBATION_CAP_POINTS)


def scaled_sigmoid(position: float) -> float:
    """``2 / (1 + exp(5 y)) - 1``: 0.987 at y = -1, 0 at y = 0, tending to -1 as y grows."""
    return 2.0 / (1.0 + math.exp(min(5.0 * position, 700.0))) - 1.0


def _sigmoid(position: FloatArray) -> FloatArray:
    return np.asarray(2.0 / (1.0 + np.exp(np.minimum(5.0 * position, 700.0))) - 1.0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PointWeights:
    """Per scoreable point of a series: its index, its window (``NO_WINDOW`` outside) and its
    unweighted sigmoid (positive inside a window, negative outside)."""

    index: IntArray
    window: IntArray
    sigmoid: FloatArray


def point_weights(series: LabelledSeries) -> PointWeights:
    """The weight of a detection at each point after the probationary period."""
    first = series.probation_points
    index = np.arange(first, series.length, dtype=np.int64)
    window = np.full(index.size, NO_WINDOW, dtype=np.int64)
    sigmoid = np.full(index.size, -1.0)
    for w, (start, end) in enumerate(series.windows):
        width = end - start + 1
        after_end = series.windows[w + 1][0] if w + 1 < len(series.windows) else series.length
        inside = np.arange(max(start, first), end + 1)
        window[inside - first] = w
        sigmoid[inside - first] = _sigmoid(-(end - inside + 1) / width)
        outside = np.arange(max(end + 1, first), after_end)
        sigmoid[outside - first] = _sigmoid((outside - end) / max(width - 1, 1))
    return PointWeights(index=index, window=window, sigmoid=sigmoid)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """The raw scores of the null and the perfect detector, which normalisation maps to 0 and 100."""

    null: float
    perfect: float

    def normalise(self, raw: float) -> float:
        """0 for the null detector, 100 for the perfect one; NaN for series without windows."""
        if self.perfect == self.null:
            return math.nan
        return 100.0 * (raw - self.null) / (self.perfect - self.null)


def bounds(series: Iterable[LabelledSeries], profile: CostProfile) -> Bounds:
    null = perfect = 0.0
    for s in series:
        null -= profile.fn_weight * len(s.windows)
        for start, end in s.windows:
            earliest = max(start, s.probation_points)
            perfect += profile.tp_weight * scaled_sigmoid(-(end - earliest + 1) / (end - start + 1))
    return Bounds(null=null, perfect=perfect)


def raw_score(series: LabelledSeries, detections: Sequence[bool] | npt.NDArray[np.bool_],
              profile: CostProfile) -> float:
    """One file's raw score for a boolean detection per point (detections in probation ignored)."""
    flags = np.asarray(detections, dtype=bool)
    if flags.size != series.length:
        raise ValueError(f"{series.name}: {flags.size} detections for {series.length} points")
    weights = point_weights(series)
    hit = flags[weights.index]
    total = float(profile.fp_weight * weights.sigmoid[hit & (weights.window == NO_WINDOW)].sum())
    for w in range(len(series.windows)):
        in_window = hit & (weights.window == w)
        total += profile.tp_weight * float(weights.sigmoid[in_window].max()) if in_window.any() else -profile.fn_weight
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    """The best threshold for one profile over a corpus, its raw and normalised score."""

    profile: str
    threshold: float
    raw: float
    score: float
    bounds: Bounds


def sweep(series: Sequence[LabelledSeries], scores: Sequence[FloatArray], profile: CostProfile) -> SweepResult:
    """The threshold (detection when ``score >= threshold``) that maximises the corpus's score."""
    flat_scores, flat_window, flat_sigmoid = _flatten(series, scores)
    limits = bounds(series, profile)
    order = np.argsort(-flat_scores, kind="stable")
    sorted_scores = flat_scores[order]
    window, sigmoid = flat_window[order], flat_sigmoid[order]
    delta = np.where(window == NO_WINDOW, profile.fp_weight * sigmoid, 0.0)
    best_in_window: dict[int, float] = {}
    for k in np.flatnonzero(window != NO_WINDOW):
        w, value = int(window[k]), profile.tp_weight * float(sigmoid[k])
        previous = best_in_window.get(w)
        if previous is None:
            delta[k], best_in_window[w] = value + profile.fn_weight, value
        elif value > previous:
            delta[k], best_in_window[w] = value - previous, value
    running = limits.null + np.cumsum(delta)
    # A threshold admits every point with an equal score at once: only the last of a run of ties counts.
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    candidates = np.flatnonzero(last_of_tie)
    if candidates.size == 0 or running[candidates].max() <= limits.null:
        threshold = math.inf if candidates.size == 0 else float(sorted_scores[0]) + 1.0
        return SweepResult(profile=profile.name, threshold=threshold, raw=limits.null, score=0.0, bounds=limits)
    best = candidates[int(np.argmax(running[candidates]))]
    raw = float(running[best])
    return SweepResult(profile=profile.name, threshold=float(sorted_scores[best]), raw=raw,
                       score=limits.normalise(raw), bounds=limits)


def _flatten(series: Sequence[LabelledSeries],
             scores: Sequence[FloatArray]) -> tuple[FloatArray, IntArray, FloatArray]:
    """Every scoreable point of the corpus, windows numbered across files."""
    if len(series) != len(scores):
        raise ValueError(f"{len(scores)} score arrays for {len(series)} series")
    parts_s, parts_w, parts_g = [], [], []
    offset = 0
    for s, values in zip(series, scores, strict=True):
        values = np.asarray(values, dtype=np.float64)
        if values.size != s.length:
            raise ValueError(f"{s.name}: {values.size} scores for {s.length} points")
        weights = point_weights(s)
        parts_s.append(values[weights.index])
        parts_w.append(np.where(weights.window == NO_WINDOW, NO_WINDOW, weights.window + offset))
        parts_g.append(weights.sigmoid)
        offset += len(s.windows)
    if not parts_s:
        empty = np.zeros(0)
        return empty, np.zeros(0, dtype=np.int64), empty
    return np.concatenate(parts_s), np.concatenate(parts_w), np.concatenate(parts_g)


def score_at(series: Sequence[LabelledSeries], scores: Sequence[FloatArray], profile: CostProfile,
             threshold: float) -> float:
    """The normalised score of ``series`` at a fixed threshold (e.g. one group at the corpus's best)."""
    raw = sum(raw_score(s, np.asarray(v) >= threshold, profile) for s, v in zip(series, scores, strict=True))
    return bounds(series, profile).normalise(raw)
