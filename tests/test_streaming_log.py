"""The run directory streams: the log goes to Parquet one row group at a time, metrics are folded
as events arrive, the hash is computed while writing; reads push columns and filters down.

Memory is checked on structural counters (events buffered by the writer, events retained by the
log), never on wall time or RSS; the RSS of long runs is measured in
``benchmarks/bench_constant_memory.py`` (numbers in ``benchmarks/RESULTS_capacity.md``).
"""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest

from novacron.app.analysis import load_run
from novacron.app.cli import main, parse_duration_s
from novacron.app.eventstore import EventLogWriter, event_log_sha256, read_events
from novacron.app.spill import SpilledColumn
from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, resolve_scenario, with_duration
from novacron.streaming import ExactSum, select_percentile
from sim.run import run_scenario, simulate

SHORT_S = 1800.0


@pytest.fixture(scope="module")
def scenario() -> tuple[Scenario, str]:
    """The default scenario for half an hour: placements, migrations, per-host samples, Raft."""
    return resolve_scenario("default", duration_s=SHORT_S)


def _summary(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("wall_s")
    return summary


def test_hash_and_summary_do_not_depend_on_the_row_group_size(scenario: tuple[Scenario, str],
                                                              tmp_path: Path) -> None:
    sc, text = scenario
    small = run_scenario(sc, 7, tmp_path / "small", text, report=False, row_group_events=7)
    large = run_scenario(sc, 7, tmp_path / "large", text, report=False, row_group_events=100_000)
    assert _summary(tmp_path / "small") == _summary(tmp_path / "large")
    assert small.summary["events_sha256"] == large.summary["events_sha256"]
    # and both equal the log held in memory: its hash and its metrics, computed in one go
    ctx = simulate(sc, 7)
    assert small.summary["events_sha256"] == event_log_sha256(ctx.log)
    in_memory = {**compute_metrics(ctx.log), **ctx.config_metrics}
    assert small.summary["metrics"] == json.loads(json.dumps(in_memory))
    assert small.summary["metrics"]["migration.requested"] > 0  # the run exercised the migration folds
    # repr, not ==: an unmeasured downtime is NaN, and NaN != NaN
    assert [repr(e) for e in read_events(tmp_path / "small" / "events.parquet")] == [repr(e) for e in ctx.log]


def test_leaving_the_model_to_the_process_exit_changes_nothing_in_the_run(scenario: tuple[Scenario, str],
                                                                        tmp_path: Path) -> None:
    """The ``novacron`` command freezes the dead model instead of collecting it (``release_model``):
    the same log and summary, and the model really left to the collector's blind spot."""
    sc, text = scenario
    released = run_scenario(sc, 7, tmp_path / "released", text, report=False)
    frozen_before = gc.get_freeze_count()
    try:
        kept = run_scenario(sc, 7, tmp_path / "kept", text, report=False, release_model=False)
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()  # this test process goes on: give the model back to the collector
    assert kept.summary["events_sha256"] == released.summary["events_sha256"]
    assert _summary(tmp_path / "kept") == _summary(tmp_path / "released")


def test_a_long_log_frees_the_model_even_when_the_process_exits_after(scenario: tuple[Scenario, str],
                                                                     tmp_path: Path) -> None:
    """Above ``release_model_above_events`` the dead model is collected, not frozen: a long log's
    report would otherwise add its memory to the model's (30 simulated days of scale-1000)."""
    sc, text = scenario
    frozen_before = gc.get_freeze_count()
    try:
        long = run_scenario(sc, 7, tmp_path / "long", text, report=True, release_model=False,
                            release_model_above_events=1)
        assert gc.get_freeze_count() == frozen_before
        short = run_scenario(sc, 7, tmp_path / "short", text, report=False, release_model=False,
                             release_model_above_events=long.summary["events"] + 1)
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()
    assert long.summary["events_sha256"] == short.summary["events_sha256"]


def test_the_writer_holds_at_most_one_row_group_and_the_log_none(scenario: tuple[Scenario, str],
                                                                tmp_path: Path) -> None:
    sc, _ = scenario
    writer = EventLogWriter(tmp_path / "events.parquet", row_group_events=50)
    ctx = simulate_streaming(sc, writer)
    writer.close()
    assert writer.count == len(ctx.log) > 10 * 50
    assert writer.peak_buffered <= 50
    assert writer.row_groups == math.ceil(writer.count / 50)
    assert not ctx.log.retains
    with pytest.raises(RuntimeError, match="keeps no events"):
        list(ctx.log)


def simulate_streaming(sc: Scenario, writer: EventLogWriter) -> Any:
    from sim.run import _simulate

    ctx, _ = _simulate(sc, 7, progress=False, watch=None, sinks=(writer.append,), retain=False)
    return ctx


def test_load_run_reads_only_the_columns_and_rows_asked_for(scenario: tuple[Scenario, str], tmp_path: Path) -> None:
    sc, text = scenario
    result = run_scenario(sc, 7, tmp_path, text, report=False, row_group_events=64)
    events = result.events
    finished = sum(1 for ev in events if type(ev).__name__ == "MigrationFinished")
    placed = sum(1 for ev in events if type(ev).__name__ == "VMPlaced")

    run = load_run(tmp_path, columns=["type", "t_s", "vm_id"], filter=pc.field("type") == "VMPlaced")
    assert list(run.events.columns) == ["type", "t_s", "vm_id"]
    assert len(run.events) == placed == run.metrics["cluster.vms_placed"]

    migrations = load_run(tmp_path).migrations()
    assert len(migrations) == finished > 0
    assert set(migrations["type"]) == {"MigrationFinished"}
    assert {"downtime_ms", "total_time_ms", "outcome"} <= set(migrations.columns)
    assert "cpu_pct" not in migrations.columns and "decision_ms" not in migrations.columns

    narrow = load_run(tmp_path).of_type("HostUtilisationSampled", columns=["t_s", "cpu_pct"])
    assert list(narrow.columns) == ["t_s", "cpu_pct"]
    # a type with no rows in this run: an empty frame that still has the type's columns
    absent = load_run(tmp_path).of_type("ManagerCommandApplied")
    assert len(absent) == 0 and "command_key" in absent.columns
    # the whole-log view still works for notebooks, and agrees with the pushed-down one
    everything = load_run(tmp_path).events
    assert len(everything) == len(events)
    assert len(everything[everything["type"] == "MigrationFinished"]) == finished


def test_spilled_percentiles_are_numpys_bit_for_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import novacron.app.spill as spill
    import novacron.streaming as streaming

    rng = np.random.default_rng(16)
    monkeypatch.setattr(spill, "READ_VALUES", 97)  # many chunks
    for trial, gather in enumerate((0, 3, 1 << 20) * 6):
        monkeypatch.setattr(streaming, "GATHER_LIMIT", gather)  # 0: narrow all 64 bits
        n = int(rng.integers(1, 1500))
        values = [rng.normal(size=n), rng.integers(0, 4, size=n).astype(float), 100 * rng.random(n)][trial % 3]
        column = SpilledColumn(tmp_path / f"c{trial}.f64")
        for v in values:
            column.append(float(v))
        for q in (0, 1, 50, 95, 99, 100):
            assert column.percentile(q) == float(np.percentile(values, q)), (trial, gather, n, q)


def test_exact_sum_does_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(5)
    terms = np.concatenate([rng.normal(scale=1e6, size=5000), rng.random(5000) * 1e-9, [0.0, -0.0, 1e300, -1e300]])
    for chunk in (1, 7, 1000, 20_000):
        total = ExactSum()
        for start in range(0, terms.size, chunk):
            total.add(terms[start:start + chunk])
        assert total.total() == math.fsum(terms)


def test_select_percentile_matches_numpy_on_ties_and_edges() -> None:
    for values in (np.array([5.0]), np.zeros(10), np.array([1.0, 1.0, 2.0, 2.0, 2.0, 9.0]), np.array([-3.0, 3.0])):
        for q in (0, 1, 50, 99, 100):
            got = select_percentile(lambda v=values: iter([v[:2], v[2:]]), values.size, q)
            assert got == float(np.percentile(values, q))
    assert math.isnan(select_percentile(lambda: iter([np.array([1.0, np.nan])]), 2, 50))


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400.0), ("24h", 86400.0), ("90m", 5400.0),
                                               ("45s", 45.0), ("3600", 3600.0), ("1.5d", 129600.0)])
def test_duration_parses_units(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("bad", ["0", "-1d", "abc", "400d", "nan", "d"])
def test_a_bad_duration_is_one_line_and_exit_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "scale-3", f"--duration={bad}", "--no-progress", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--duration" in err and "allowed" in err


def test_duration_overrides_the_scenario_and_its_recorded_text() -> None:
    scenario, text = resolve_scenario("scale-1000", duration_s=30 * 86400.0)
    assert scenario.duration_s == 30 * 86400.0
    assert resolve_scenario("scale-1000")[0].cluster == scenario.cluster
    assert "duration_s = 2592000.0" in text and "86400.0\n" not in text.split("[cluster]")[0]
    assert with_duration("[cluster]\nhosts = 3\n", 60.0).startswith("duration_s = 60.0")
