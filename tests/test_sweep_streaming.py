"""Sweeps that stream: rows journaled as they finish, resumed after a kill, Dask worker processes killed."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from novacron.app.cli import main
from novacron.config import ConfigError
from sim.sweep import build_grid, parse_param, stream_sweep
from sim.sweep_journal import JOURNAL_NAME, ROW_GROUP_RUNS, SweepJournal, grid_fingerprint, write_table
from tests.one_line_errors import one_line_error
from tests.test_capacity_sweep import SMALL
from tests.unavailable import unavailable

REPO = Path(__file__).resolve().parents[1]
SWEEP_ARGS = ["--param", "cluster.hosts=4,6", "--param", "workload.vms=20,30", "--seeds", "2", "--no-progress"]


def _journal_runs(out: Path) -> list[int]:
    lines = (out / JOURNAL_NAME).read_text().splitlines()[1:]
    return [int(json.loads(line)["run"]) for line in lines]


def _wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s} s")
        time.sleep(0.05)


def test_a_killed_sweep_resumes_without_redoing_a_run_and_equals_an_uninterrupted_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "novacron", "sweep", str(scenario), *SWEEP_ARGS, "--workers", "1",
               "--out", str(out)]
    sweep = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for(lambda: (out / JOURNAL_NAME).exists() and len(_journal_runs(out)) >= 2, 60, "two journaled rows")
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and its worker process, mid-run
        sweep.wait()
    done_before = _journal_runs(out)
    assert 2 <= len(done_before) < 8 and not (out / "sweep.parquet").exists()

    assert main(["sweep", str(scenario), *SWEEP_ARGS, "--workers", "2", "--out", str(out)]) == 0
    assert f"resumed: {len(done_before)} run(s) already in" in capsys.readouterr().out
    runs = _journal_runs(out)
    assert runs[:len(done_before)] == done_before
    assert collections.Counter(runs) == collections.Counter(range(8))  # every run exactly once over both

    assert main(["sweep", str(scenario), *SWEEP_ARGS, "--workers", "2", "--out", str(tmp_path / "whole")]) == 0
    resumed = pd.read_parquet(out / "sweep.parquet")
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(tmp_path / "whole" / "sweep.parquet"))
    assert list(resumed["run"]) == list(range(8)) and (resumed["status"] == "ok").all()


def test_another_grid_in_the_same_folder_is_refused_unless_fresh(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    out = str(tmp_path / "out")
    assert main(["sweep", str(scenario), "--param", "cluster.hosts=4", "--out", out, "--workers", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sweep", str(scenario), "--param", "cluster.hosts=5", "--out", out, "--workers", "1",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds another sweep's results" in err and "--fresh" in err
    assert main(["sweep", str(scenario), "--param", "cluster.hosts=5", "--out", out, "--workers", "1",
                 "--no-progress", "--fresh"]) == 0
    assert pd.read_parquet(Path(out) / "sweep.parquet")["param.cluster.hosts"].tolist() == [5]


def test_a_half_written_row_is_dropped_and_a_failed_run_is_tried_again(tmp_path: Path) -> None:
    with SweepJournal(tmp_path, "grid") as journal:
        journal.append({"run": 0, "status": "ok", "x": 1})
        journal.append({"run": 1, "status": "failed", "error": "worker died"})
    with (tmp_path / JOURNAL_NAME).open("a") as f:
        f.write('{"run": 2, "sta')  # the process died in the middle of this line
    with SweepJournal(tmp_path, "grid") as journal:
        assert journal.done == {0}
        journal.append({"run": 1, "status": "ok", "x": 2})
        journal.append({"run": 2, "status": "ok", "x": 3})
    path, rows = write_table(tmp_path)
    assert rows == 3
    assert pd.read_parquet(path)[["run", "status", "x"]].values.tolist() == [[0, "ok", 1], [1, "ok", 2], [2, "ok", 3]]
    assert "another sweep" in one_line_error(ConfigError, lambda: SweepJournal(tmp_path, "other grid"))


def test_the_table_is_written_in_row_groups_in_run_order_whatever_the_finishing_order(tmp_path: Path) -> None:
    total = 2 * ROW_GROUP_RUNS + 3
    with SweepJournal(tmp_path, "g") as journal:
        for run in reversed(range(total)):
            journal.append({"run": run, "status": "ok", **({"late_column": run} if run == 5 else {})})
    path, rows = write_table(tmp_path)
    import pyarrow.parquet as pq

    assert rows == total and pq.ParquetFile(path).metadata.num_row_groups == 3
    table = pd.read_parquet(path)
    assert table["run"].tolist() == list(range(total)) and table.columns.tolist() == ["run", "status", "late_column"]
    assert grid_fingerprint("a", [(0, (("k", 1),), 1)], False) != grid_fingerprint("a", [(0, (("k", 2),), 1)], False)


@pytest.mark.dask
def test_a_dask_worker_process_killed_mid_sweep_has_its_runs_retried_and_the_table_is_complete(
        tmp_path: Path) -> None:
    try:
        import distributed
    except ImportError:
        unavailable("Dask distributed is not installed (pip install '.[dask]')")
    grid = build_grid(SMALL, "small.toml", [parse_param("cluster.hosts=4,6"), parse_param("workload.vms=20,30")],
                      [3, 4])
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, scheduler_port=0)
    except Exception as exc:
        unavailable(f"a Dask LocalCluster of worker processes did not start: {exc!r}")
    killed: dict[str, Any] = {}
    with cluster, distributed.Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)  # type: ignore[no-untyped-call]
        assert len(pids) == 2 and os.getpid() not in pids.values()  # worker processes, not threads

        def kill_a_busy_worker(_row: dict[str, Any]) -> None:
            if killed:
                return
            busy = {w: keys for w, keys in client.processing().items() if keys}  # type: ignore[no-untyped-call]
            worker, keys = next(iter(busy.items()))
            os.kill(pids[worker], signal.SIGKILL)
            killed.update(worker=worker, keys=list(keys))

        on_dask = stream_sweep(SMALL, "small.toml", grid, tmp_path / "dask", on_row=kill_a_busy_worker,
                               dask_scheduler=cluster.scheduler_address)
        stories = client.run_on_scheduler(  # type: ignore[no-untyped-call]
            lambda dask_scheduler, keys: {k: [s[2] for s in dask_scheduler.story(k)] for k in keys},
            keys=killed["keys"])
    assert killed and on_dask.rows == len(grid) and not on_dask.failed
    for key, finishes in stories.items():  # each run lost with the worker was processed again, then done
        assert finishes.count("processing") >= 2 and "memory" in finishes, (key, finishes)
    serial = stream_sweep(SMALL, "small.toml", grid, tmp_path / "serial", workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(on_dask.table_path), pd.read_parquet(serial.table_path))
    assert collections.Counter(_journal_runs(tmp_path / "dask")) == collections.Counter(range(len(grid)))
