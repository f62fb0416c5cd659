"""The NAB scorer on hand-made cases (Lavin and Ahmad 2015): what each rule of the score means."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from novacron.anomaly.nab_scoring import (
    PROFILES,
    LabelledSeries,
    bounds,
    raw_score,
    scaled_sigmoid,
    score_at,
    sweep,
)
from novacron.app.nab import default_corpus

STANDARD = PROFILES["standard"]
# 1000 points: probation is the first 150; windows at 300..399 and 700..749.
SERIES = LabelledSeries(name="hand/made.csv", length=1000, windows=((300, 399), (700, 749)))


SUBSET = Path(__file__).parent / "testdata" / "nab"
"""Two series of the corpus in NAB's layout (its README says which), for a clone without ``shared/``."""


def nab_corpus() -> Path:
    """The whole corpus when it is beside the checkout, else the subset kept with the tests."""
    return default_corpus() or SUBSET


def detections(*indices: int, length: int = 1000) -> np.ndarray:
    flags = np.zeros(length, dtype=bool)
    flags[list(indices)] = True
    return flags


def normalised(raw: float, profile=STANDARD) -> float:
    return bounds([SERIES], profile).normalise(raw)


def test_sigmoid_is_the_published_shape():
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.987: a window's first point
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(10.0) == pytest.approx(-1.0, abs=1e-12)
    assert scaled_sigmoid(1e6) == -1.0  # no overflow far from any window


def test_null_detector_scores_zero_and_perfect_scores_100():
    for profile in PROFILES.values():
        null = raw_score(SERIES, detections(), profile)
        assert null == -2 * profile.fn_weight
        assert normalised(null, profile) == 0.0
        assert normalised(raw_score(SERIES, detections(300, 700), profile), profile) == pytest.approx(100.0)


def test_earlier_detection_scores_higher():
    by_position = [raw_score(SERIES, detections(i), STANDARD) for i in (300, 320, 350, 380, 399)]
    assert by_position == sorted(by_position, reverse=True)
    assert by_position[-1] > -1.0 + 0.0  # even the last point beats a miss
    assert by_position[-1] - (-2.0) == pytest.approx(1.0 + scaled_sigmoid(-1 / 100))


def test_only_the_first_detection_in_a_window_counts():
    assert raw_score(SERIES, detections(310, 311, 390), STANDARD) == raw_score(SERIES, detections(310), STANDARD)


def test_a_false_positive_before_any_window_costs_fp_weight():
    for profile in PROFILES.values():
        cost = raw_score(SERIES, detections(200), profile) - raw_score(SERIES, detections(), profile)
        assert cost == pytest.approx(-profile.fp_weight)


def test_a_false_positive_costs_more_the_further_it_is_from_the_last_window():
    costs = [raw_score(SERIES, detections(i), STANDARD) for i in (400, 420, 500, 690)]
    assert costs == sorted(costs, reverse=True)
    assert costs[0] - (-2.0) == pytest.approx(STANDARD.fp_weight * scaled_sigmoid(1 / 99))  # nearly free
    assert costs[-1] - (-2.0) == pytest.approx(-STANDARD.fp_weight, abs=1e-6)  # far: the full cost


def test_detections_in_the_probationary_period_are_ignored():
    assert raw_score(SERIES, detections(0, 10, 149), STANDARD) == -2.0
    assert raw_score(SERIES, detections(150), STANDARD) == pytest.approx(-2.0 - STANDARD.fp_weight)


def test_the_probation_is_capped_at_750_points():
    long = LabelledSeries(name="long", length=10_000, windows=())
    assert long.probation_points == 750
    assert SERIES.probation_points == 150


def test_the_reward_low_fn_profile_punishes_misses_twice():
    profile = PROFILES["reward_low_FN_rate"]
    assert raw_score(SERIES, detections(300), profile) - raw_score(SERIES, detections(300, 700), profile) \
        == pytest.approx(-2.0 - scaled_sigmoid(-1.0))


def test_sweep_picks_the_threshold_that_maximises_the_score():
    scores = np.zeros(1000)
    scores[[300, 700]] = 0.9  # the two window starts
    scores[200] = 0.95  # a false positive scored above them: worth admitting for two windows
    scores[[500, 600]] = 0.5  # two false positives below: not worth it
    result = sweep([SERIES], [scores], STANDARD)
    assert result.threshold == 0.9
    assert result.raw == pytest.approx(raw_score(SERIES, detections(200, 300, 700), STANDARD))
    assert result.score == pytest.approx(score_at([SERIES], [scores], STANDARD, 0.9))


def test_sweep_of_a_detector_that_only_raises_false_alarms_is_the_null_score():
    scores = np.zeros(1000)
    scores[[200, 500, 900]] = 1.0
    assert sweep([SERIES], [scores], STANDARD).score == 0.0


def test_sweep_matches_a_brute_force_search_on_random_scores():
    rng = np.random.default_rng(7)
    for _ in range(20):
        scores = rng.random(1000) ** 8
        best = max(raw_score(SERIES, scores >= t, STANDARD) for t in np.unique(scores))
        best = max(best, raw_score(SERIES, detections(), STANDARD))
        assert sweep([SERIES], [scores], STANDARD).raw == pytest.approx(best)


def test_windows_must_be_sorted_disjoint_and_inside():
    with pytest.raises(ValueError, match="window"):
        LabelledSeries(name="bad", length=100, windows=((50, 60), (55, 70)))
    with pytest.raises(ValueError, match="window"):
        LabelledSeries(name="bad", length=100, windows=((90, 100),))


def test_profiles_are_the_corpus_cost_matrices():
    corpus = nab_corpus()
    published = json.loads((corpus / "config" / "profiles.json").read_text())
    for name, entry in published.items():
        matrix = entry["CostMatrix"]
        profile = PROFILES[name]
        assert (profile.tp_weight, profile.fn_weight, profile.fp_weight) == \
            (matrix["tpWeight"], matrix["fnWeight"], matrix["fpWeight"])


def test_the_corpus_loads_and_its_perfect_detector_scores_100() -> None:
    from novacron.app.nab import load_corpus

    corpus = nab_corpus()
    files = load_corpus(corpus)
    windows = json.loads((corpus / "labels" / "combined_windows.json").read_text())
    assert len(files) == len(windows) and sum(len(f.labels.windows) for f in files) == sum(map(len, windows.values()))
    if corpus != SUBSET:
        assert (len(files), sum(map(len, windows.values()))) == (58, 116)  # the whole published corpus
    perfect = []
    for f in files:
        scores = np.zeros(f.labels.length)
        scores[[start for start, _ in f.labels.windows]] = 1.0
        perfect.append(scores)
    for profile in PROFILES.values():
        assert sweep([f.labels for f in files], perfect, profile).score == pytest.approx(100.0)
        assert sweep([f.labels for f in files], [np.zeros(f.labels.length) for f in files], profile).score == 0.0
