"""Sweeps: grid building and validation, determinism, failure reporting, a real Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from novacron.app.cli import main
from novacron.config import ConfigError
from sim.sweep import build_grid, parse_param, run_sweep, with_overrides
from tests.one_line_errors import one_line_error
from tests.unavailable import unavailable

SMALL = """
name = "sweep-small"
seed = 3
duration_s = 3600.0
[cluster]
hosts = 4
[workload]
vms = 30
arrival_window_s = 300.0
[faults]
enabled = true
host_mtbf_h = 5.0
host_mttr_h = 0.5
[cache]
enabled = false
"""


def test_param_values_are_toml_scalars() -> None:
    assert parse_param("cluster.hosts=10,20") == ("cluster.hosts", [10, 20])
    assert parse_param("faults.enabled=true,false") == ("faults.enabled", [True, False])
    assert parse_param("workload.mean_cpu_utilisation=0.3") == ("workload.mean_cpu_utilisation", [0.3])
    assert parse_param("workload.trace_format=azure-v1") == ("workload.trace_format", ["azure-v1"])
    with pytest.raises(ConfigError, match="expected KEY=V1,V2"):
        parse_param("cluster.hosts")


def test_overrides_set_nested_keys_without_touching_the_original() -> None:
    data = {"cluster": {"hosts": 3}}
    assert with_overrides(data, (("cluster.hosts", 9), ("faults.enabled", True))) == {
        "cluster": {"hosts": 9}, "faults": {"enabled": True}}
    assert data == {"cluster": {"hosts": 3}}


@pytest.mark.parametrize(("param", "expected"), [
    ("cluster.hostz=3", "unknown key 'cluster.hostz'; did you mean 'cluster.hosts'?"),
    ("cluster.hosts=0", "cluster.hosts = 0 is out of range"),
    ("cluster.hosts.x=1", "cluster.hosts is a setting, not a section"),
])
def test_grid_is_validated_before_running_with_one_line_errors(param: str, expected: str) -> None:
    assert expected in one_line_error(ConfigError, lambda: build_grid(SMALL, "small.toml", [parse_param(param)], [1]))


def test_grid_is_params_product_times_seeds() -> None:
    grid = build_grid(SMALL, "small.toml", [parse_param("cluster.hosts=4,5"), parse_param("workload.vms=10,20,30")],
                      [1, 2])
    assert len(grid) == 12
    assert [r.index for r in grid] == list(range(12))
    assert {r.seed for r in grid} == {1, 2}


def _grid() -> list:  # type: ignore[type-arg]
    return build_grid(SMALL, "small.toml", [parse_param("cluster.hosts=4,6")], [1, 2, 3])


def test_same_seeds_give_the_same_merged_table() -> None:
    first = run_sweep(SMALL, "small.toml", _grid(), workers=2).table
    second = run_sweep(SMALL, "small.toml", _grid(), workers=2).table
    assert (first["status"] == "ok").all(), first["error"].tolist()
    pd.testing.assert_frame_equal(first, second)
    assert first["events_sha256"].nunique() == 6  # every run its own log, each reproduced
    assert list(first["run"]) == list(range(6))
    assert {"param.cluster.hosts", "seed", "cluster.uptime_pct", "cluster.peak_cpu_pct"} <= set(first.columns)
    assert first["cluster.vms_requested"].eq(30).all()


def test_a_failed_run_is_reported_and_the_others_complete(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL)
    good = Path(__file__).parent / "fixtures" / "traces" / "azure_v1" / "vmtable.csv"
    code = main(["sweep", str(scenario), "--param", "workload.trace_format=azure-v1",
                 "--param", f"workload.trace_path={tmp_path / 'missing.csv'},{good}", "--seeds", "2",
                 "--workers", "2", "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "run 0 failed (seed 3, " in err and "run 1 failed (seed 4, " in err
    assert "missing.csv" in err and "2 of 4 run(s) failed" in err
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert list(table["status"]) == ["failed", "failed", "ok", "ok"]
    assert table.loc[table.status == "ok", "cluster.vms_requested"].gt(0).all()


@pytest.mark.dask
def test_sweep_runs_on_a_real_dask_local_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import distributed
    except ImportError:
        unavailable("Dask distributed is not installed (pip install '.[dask]')")
    # Threads, not processes: process workers are slow to start on 2 cores; the scheduler, the
    # workers and the task transport are real Dask all the same.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        on_dask = run_sweep(SMALL, "small.toml", _grid(), dask_scheduler=cluster.scheduler_address).table
        scenario = tmp_path / "small.toml"
        scenario.write_text(SMALL)
        assert main(["sweep", str(scenario), "--param", "cluster.hosts=4,6", "--seeds", "3", "--out",
                     str(tmp_path / "cli"), "--dask-scheduler", cluster.scheduler_address, "--no-progress"]) == 0
        assert "on Dask scheduler" in capsys.readouterr().out
        with distributed.Client(cluster.scheduler_address) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)  # type: ignore[no-untyped-call]
    local = run_sweep(SMALL, "small.toml", _grid(), workers=1).table
    assert (on_dask["status"] == "ok").all(), on_dask["error"].tolist()
    pd.testing.assert_frame_equal(on_dask, local)
    assert len(executed) == 2 and sum(executed.values()) == 2 * len(_grid())  # every run ran on a Dask worker
    from_cli = pd.read_parquet(tmp_path / "cli" / "sweep.parquet")
    seeds_from_scenario = build_grid(SMALL, "small.toml", [parse_param("cluster.hosts=4,6")], [3, 4, 5])
    expected = run_sweep(SMALL, "small.toml", seeds_from_scenario, workers=1).table
    assert from_cli["seed"].tolist() == [3, 4, 5, 3, 4, 5]
    assert from_cli["cluster.uptime_pct"].tolist() == expected["cluster.uptime_pct"].tolist()
