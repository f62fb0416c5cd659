"""Tracked benchmark ratios and their regression check."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.benchratio import compare, tracked_ratios


def report(subject_s: float, baseline_s: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"benchmarks": [
        {"name": "bench_x.py::test_dict", "stats": {"median": baseline_s}, "extra_info": {}},
        {"name": "bench_x.py::test_l1", "stats": {"median": subject_s},
         "extra_info": extra if extra is not None else {"baseline": "test_dict"}},
    ]}


def test_ratio_is_subject_over_baseline() -> None:
    (ratio,) = tracked_ratios(report(3.0, 1.5))
    assert (ratio.subject, ratio.baseline, ratio.value) == ("test_l1", "test_dict", 2.0)


def test_a_ratio_that_grows_beyond_the_tolerance_regresses() -> None:
    (result,) = compare(report(2.0, 1.0), report(2.7, 1.0), tolerance=0.3)
    assert result.regressed and "REGRESSED" in result.describe()


def test_machine_speed_cancels_out() -> None:
    # Twice as slow a machine: both numbers double, the ratio stays.
    (result,) = compare(report(2.0, 1.0), report(4.0, 2.0), tolerance=0.05)
    assert not result.regressed


def test_first_run_has_nothing_to_regress_against() -> None:
    (result,) = compare(None, report(2.0, 1.0))
    assert result.previous is None and not result.regressed


def test_unknown_baseline_is_named() -> None:
    with pytest.raises(ValueError, match="test_nope"):
        tracked_ratios(report(1.0, 1.0, {"baseline": "test_nope"}))


def test_a_ratio_measured_inside_the_benchmark_is_tracked_as_is() -> None:
    data = {"benchmarks": [{"name": "bench_c.py::test_model", "stats": {"median": 9.0},
                            "extra_info": {"baseline": "raw SimPy", "baseline_ratio": 11.5}}]}
    (ratio,) = tracked_ratios(data)
    assert (ratio.subject, ratio.baseline, ratio.value) == ("test_model", "raw SimPy", 11.5)
