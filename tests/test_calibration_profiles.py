"""Calibration profiles as data (issue 15, items 1-2): files, scenarios, the fit, the shipped default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from backends.lab.calibration_fit import fit_profile, per_run, predict, predict_planner, summary, usable_runs
from backends.lab.calibration_grid import full_grid, point_columns, training_grid
from novacron.app.profiles import DEFAULT_PROFILE, builtin_profile_names, dumps_profile, load_profile, loads_profile
from novacron.config import ConfigError
from novacron.migration.calibration import ProfileError
from novacron.migration.protocol import MIB
from novacron.scenario import load_scenario
from tests.one_line_errors import one_line_error

REPO = Path(__file__).resolve().parent.parent
REAL_RUNS = REPO / "benchmarks" / "data" / "lab_quiet_2026-11-30" / "real.csv"


def test_built_in_profiles_load_and_say_where_their_numbers_come_from() -> None:
    assert DEFAULT_PROFILE in builtin_profile_names() and "lab-md" in builtin_profile_names()
    for name in builtin_profile_names():
        profile = load_profile(name)
        assert profile.name == name and profile.provenance.source and profile.provenance.date


def test_a_profile_survives_a_round_trip_through_toml() -> None:
    profile = dataclasses.replace(load_profile(DEFAULT_PROFILE), name="copy")
    again = loads_profile(dumps_profile(profile, "a copy"), origin="<test>")
    for field in ("stream_cap_bytes_s", "stop_copy_bytes_s", "setup_s", "setup_s_per_gib", "sync_s_per_gib",
                  "device_state_ms", "zero_scan_pages_s"):
        assert getattr(again, field) == pytest.approx(getattr(profile, field), rel=1e-5), field
    assert again.provenance.hosts == profile.provenance.hosts and again.provenance.runs == profile.provenance.runs


@pytest.mark.parametrize("text, named", [
    ('schema_version = 2\nname = "x"\n', "schema_version"),
    ('schema_version = 1\nname = "x"\n[stream]\nstream_cap_mib_s = -1\n', "stream.stream_cap_mib_s"),
    ('schema_version = 1\nname = "x"\n[fixed]\nsetup = 1\n', "fixed.setup"),
    ('schema_version = 1\nname = "x"\n[per_gib]\nsync_ms = "fast"\n', "per_gib.sync_ms"),
    ('schema_version = 1\nname = "x"\nspeed = 3\n', "speed"),
    ("schema_version = 1\nname = [\n", "not valid TOML"),
])
def test_a_bad_profile_is_one_line_naming_the_field(text: str, named: str) -> None:
    assert named in one_line_error(ProfileError, lambda: loads_profile(text, origin="bad.toml"))


@pytest.mark.parametrize("table, key", [("stream", "stream_cap_mib_s"), ("stream", "rate_overshoot"),
                                        ("fixed", "device_state_ms"), ("per_gib", "setup_s"), ("per_gib", "sync_ms")])
def test_a_profile_missing_a_constant_is_refused_not_defaulted(table: str, key: str) -> None:
    lines = dumps_profile(load_profile("lab-md")).splitlines()
    start = lines.index(f"[{table}]")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("["))
    line = next(i for i in range(start, end) if lines[i].startswith(f"{key} ="))
    text = "\n".join(lines[:line] + lines[line + 1:])
    assert f"{table}.{key} is missing" in one_line_error(ProfileError, lambda: loads_profile(text, origin="p.toml"))


def test_a_scenario_selects_a_profile_relative_to_its_own_folder(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    profile = dataclasses.replace(load_profile("lab-md"), name="mine", stream_cap_bytes_s=77 * MIB)
    (folder / "mine.toml").write_text(dumps_profile(profile))
    (folder / "s.toml").write_text('[migration]\ncalibration = "mine.toml"\n')
    scenario = load_scenario(folder / "s.toml")
    assert scenario.migration.calibration == str(folder / "mine.toml")
    assert load_profile(scenario.migration.calibration).stream_cap_bytes_s == 77 * MIB
    (folder / "bad.toml").write_text('[migration]\ncalibration = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_scenario(folder / "bad.toml")


def test_the_simulated_run_uses_the_scenario_profile() -> None:
    from novacron.migration.config import MigrationConfig
    from sim.migration.service import scenario_profile

    assert scenario_profile(MigrationConfig(calibration="lab-md")).name == "lab-md"
    assert scenario_profile(MigrationConfig()).stream_cap_bytes_s == MigrationConfig().stream_cap_mib_s * MIB


def test_the_grid_varies_memory_working_set_rate_bandwidth_and_downtime() -> None:
    train = training_grid()
    assert len({p.memory_mib for p in train}) >= 3 and min(p.memory_mib for p in train) == 256
    assert max(p.memory_mib for p in train) == 1024
    assert None in {p.bandwidth_mib_s for p in train} and 0 in {p.dirty_rate_pages_s for p in train}
    assert len({p.wws_mib for p in train}) >= 3 and len({p.downtime_limit_ms for p in train}) >= 3
    held_out = [p for p in full_grid() if not p.train]
    for attribute in ("memory_mib", "wws_mib", "dirty_rate_pages_s", "downtime_limit_ms"):
        assert not {getattr(p, attribute) for p in held_out} & {getattr(p, attribute) for p in train}, attribute


def test_the_fit_recovers_a_known_profile_from_simulated_runs() -> None:
    truth = dataclasses.replace(load_profile("lab-md"), stream_cap_bytes_s=150 * MIB, setup_s=0.4,
                                setup_s_per_gib=0.8)
    points = [p for p in training_grid() if p.dirty_rate_pages_s in (0, 2000) and p.bandwidth_mib_s != 32.0]
    real = pd.DataFrame([{**point_columns(p), "outcome": "completed"} for p in points])
    simulated = predict(real, truth).drop(columns=["converges"])
    real = real.merge(simulated, on="index")
    fitted = fit_profile(real, load_profile("lab-md"), passes=5)
    # within the acceptance bound: fixed and per-GiB setup trade off against each other on 4 sizes
    assert summary(per_run(real, predict(real, fitted)), "fit")["total_median_pct"] <= 10.0


def test_a_held_parameter_keeps_its_measured_value_and_the_rest_is_fitted() -> None:
    # e.g. QEMU's setup-time per GiB, read from its own counters rather than fitted through total time
    truth = dataclasses.replace(load_profile("lab-md"), stream_cap_bytes_s=150 * MIB, setup_s=0.4,
                                setup_s_per_gib=0.5)
    points = [p for p in training_grid() if p.dirty_rate_pages_s == 0 and p.bandwidth_mib_s != 32.0]
    real = pd.DataFrame([{**point_columns(p), "outcome": "completed"} for p in points])
    real = real.merge(predict(real, truth).drop(columns=["converges"]), on="index")
    fitted = fit_profile(real, load_profile("lab-md"), passes=2, held={"setup_s_per_gib": 0.5})
    assert fitted.setup_s_per_gib == 0.5
    assert fitted.stream_cap_bytes_s != load_profile("lab-md").stream_cap_bytes_s


def test_the_shipped_default_reproduces_its_recorded_held_out_errors_from_the_committed_runs() -> None:
    # the raw lab runs are in the repository, so the default profile's numbers can be checked without a lab
    profile = load_profile(DEFAULT_PROFILE)
    recorded = dict(profile.provenance.fit_errors)
    real = usable_runs(pd.read_csv(REAL_RUNS))
    held_out = real[real["split"] == "held_out"]
    figures = summary(per_run(held_out, predict(held_out, profile)), "sim")
    assert figures["total_median_pct"] == pytest.approx(recorded["held_out_total_time_median_pct"], abs=0.05)
    assert figures["total_p90_pct"] == pytest.approx(recorded["held_out_total_time_p90_pct"], abs=0.05)
    planner = summary(per_run(held_out, predict(held_out, profile, predict_planner)), "planner")
    assert planner["verdict_right"] == figures["verdict_right"] or planner["runs"] == len(held_out)
