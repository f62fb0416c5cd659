"""The calibration's analysis without a lab: a known simulated "truth" is recovered by the fit."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed (the 'real' extra)")

from backends.lab.calibrate import (
    fit_calibration,
    grid,
    relative_errors,
    run_planner,
    run_sim,
    summarise,
)
from novacron.migration.protocol import MIB
from sim.migration.qemu_model import LAB_CALIBRATION


def fake_real_runs(points: list, **truth: float) -> pd.DataFrame:
    """Real runs as a simulation with other stream parameters would produce them."""
    frame = run_sim(points, dataclasses.replace(LAB_CALIBRATION, **truth))
    frame["outcome"] = "completed"
    return frame


@pytest.mark.slow
def test_the_fit_recovers_a_known_stream_and_predicts_held_out_runs() -> None:
    points = grid()
    real = fake_real_runs(points, stream_cap_bytes_s=150 * MIB, setup_s=0.4)
    fitted = fit_calibration(real, points)
    errors = relative_errors(real, run_sim(points, fitted))
    held_out = errors[~errors["train"].astype(bool)]
    assert held_out["total_time_ms"].median() <= 5.0, (fitted, held_out)
    assert abs(fitted.stream_cap_bytes_s - 150 * MIB) <= 25 * MIB


def test_error_summary_has_median_and_p90_for_every_metric() -> None:
    points = grid(rates=[1000, 4000], bandwidths=[64.0], downtimes=[300.0])
    real = fake_real_runs(points, stream_cap_bytes_s=100 * MIB)
    rows = summarise(relative_errors(real, run_planner(points)), "planner")
    assert [r["metric"] for r in rows] == ["total_time_ms", "downtime_ms", "bytes_sent", "dirty_syncs"]
    assert all(r["runs"] == 2 and r["p90_error_pct"] >= r["median_error_pct"] >= 0 for r in rows)


def test_runs_that_did_not_complete_are_left_out_of_the_errors() -> None:
    points = grid(rates=[1000], bandwidths=[64.0, 256.0], downtimes=[300.0])
    real = fake_real_runs(points)
    real.loc[real["index"] == 1, "outcome"] = "aborted"
    assert list(relative_errors(real, run_sim(points)).index) == [0]
