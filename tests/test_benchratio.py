"""Tracked benchmark ratios and their regression check."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.benchratio import check_report, compare, tracked_ratios


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


@pytest.mark.parametrize(("bad", "field"), [
    ([1, 2], "top level is a JSON list"),
    ({"benchmarks": {}}, "'benchmarks' is missing or not a list"),
    ({"benchmarks": ["x"]}, "benchmarks[0] is not an object"),
    ({"benchmarks": [{"stats": {"median": 1.0}}]}, "benchmarks[0].name"),
    ({"benchmarks": [{"name": "a", "stats": {"median": "fast"}}]}, "benchmarks[0].stats.median = 'fast'"),
    ({"benchmarks": [{"name": "a", "stats": {"median": 0}}]}, "benchmarks[0].stats.median = 0"),
    ({"benchmarks": [{"name": "a", "stats": {"median": True}}]}, "benchmarks[0].stats.median = True"),
    ({"benchmarks": [{"name": "a"}]}, "benchmarks[0].stats.median = None"),
    ({"benchmarks": [{"name": "a", "stats": {"median": 1.0}, "extra_info": []}]}, "benchmarks[0].extra_info"),
    ({"benchmarks": [{"name": "a", "stats": {"median": 1.0}, "extra_info": {"baseline": 3}}]},
     "benchmarks[0].extra_info.baseline = 3"),
    ({"benchmarks": [{"name": "a", "stats": {"median": 1.0}, "extra_info": {"baseline": "b", "baseline_ratio": -2}}]},
     "benchmarks[0].extra_info.baseline_ratio = -2"),
])
def test_a_report_of_another_shape_is_refused_naming_the_field(bad: Any, field: str) -> None:
    with pytest.raises(ValueError) as info:
        check_report(bad)
    assert field in str(info.value)


def test_a_report_of_the_right_shape_passes() -> None:
    good = report(3.0, 1.5)
    assert check_report(good) is good


def test_one_owner_of_the_shape_a_benchmark_without_a_baseline_is_no_ratio_for_either() -> None:
    for extra in ({"baseline": None}, {"baseline": ""}, {"baseline_ratio": -2}):
        bench = {"benchmarks": [{"name": "a", "stats": {"median": 1.0}, "extra_info": extra}]}
        assert check_report(bench) is bench
        assert tracked_ratios(bench) == []
    with pytest.raises(ValueError, match=r"benchmarks\[0\].stats.median"):
        tracked_ratios({"benchmarks": [{"name": "a", "stats": {}}]})
