"""Every real artefact is a run directory: a manager's data directory (Parquet row groups folded at
stop) opens with ``load_run`` and renders with ``novacron report`` like a simulated run.
(The lab migration and the calibrate grid directories: ``tests/test_libvirt_lab.py``.)"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from backends.manager.client import ClusterClient
from backends.manager.eventlog import PARTS_DIR, ParquetEventLog, fold_manager_events
from backends.manager.localcluster import LocalCluster
from novacron.app.analysis import load_run
from novacron.app.cli import main
from novacron.raft.events import LeaderElected, ManagerCommandApplied, ManagerStarted
from novacron.statemachine import encode_command


def _commands(log: ParquetEventLog, first_index: int, count: int) -> None:
    for index in range(first_index, first_index + count):
        log.emit_commands_applied("manager-1", 1, index, [(0, "put", f"k{index}", 2)])


def test_row_groups_are_closed_parts_folded_into_a_run_directory_at_close(tmp_path: Path) -> None:
    log = ParquetEventLog(tmp_path, manager_id=1, row_group_events=4, flush_interval_s=3600.0)
    log.emit(ManagerStarted, source="manager-1", manager_id=1, restarted=False)
    _commands(log, 1, 10)
    log.wait_written()  # parts are written on the log's writer thread
    assert len(list((tmp_path / PARTS_DIR).glob("part-*.parquet"))) == 2  # 8 of 11 events, 4 a row group
    log.close()
    assert not list((tmp_path / PARTS_DIR).glob("part-*.parquet"))
    run = load_run(tmp_path, check_events=True)
    assert run.summary["runtime"] == "manager" and run.summary["events"] == 11
    assert list(run.of_type("ManagerCommandApplied")["log_index"]) == list(range(1, 11))
    assert list(run.events["seq"]) == list(range(11))


def test_a_killed_manager_loses_at_most_its_buffer_and_its_restart_writes_nothing_twice(tmp_path: Path) -> None:
    log = ParquetEventLog(tmp_path, manager_id=1, row_group_events=4, flush_interval_s=3600.0)
    _commands(log, 1, 10)  # 2 parts written, 2 events buffered: the "SIGKILL" drops them (no close)
    log.wait_written()
    restarted = ParquetEventLog(tmp_path, manager_id=1, row_group_events=4)
    assert restarted.last_applied == (8, 0)
    assert restarted.already_written(8, 0) and not restarted.already_written(9, 0)
    _commands(restarted, 1, 12)  # the restart re-applies every committed entry
    restarted.close()
    applied = load_run(tmp_path).of_type("ManagerCommandApplied")
    assert list(applied["log_index"]) == list(range(1, 13)) and list(applied["seq"]) == list(range(12))


def test_folding_again_after_a_crash_mid_fold_duplicates_nothing(tmp_path: Path) -> None:
    log = ParquetEventLog(tmp_path, manager_id=1, row_group_events=2)
    _commands(log, 1, 4)
    log.wait_written()
    parts = sorted((tmp_path / PARTS_DIR).glob("part-*.parquet"))
    kept = [p.read_bytes() for p in parts]
    fold_manager_events(tmp_path, manager_id=1)
    for path, data in zip(parts, kept, strict=True):  # the parts survived the fold (crash before unlink)
        path.write_bytes(data)
    summary = fold_manager_events(tmp_path, manager_id=1)
    assert summary["events"] == 4


@pytest.mark.slow
def test_a_real_managers_data_directory_opens_with_load_run_and_renders(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "cluster")
    try:
        cluster.start_all()

        async def work() -> None:
            await cluster.wait_for_leader()
            client = ClusterClient(cluster.client_addresses)
            for i in range(20):
                assert (await client.propose(encode_command(op="put", key=f"k{i}", value="v"), deadline_s=20))["ok"]
            await client.close()
            # A majority acknowledges the writes; a lagging third manager may not have applied any yet
            # (a CI run under load stopped it with none). Stop only once every manager has them all.
            deadline = time.monotonic() + 30
            while True:
                rows = await cluster.statuses()
                commits = [r.get("commit", 0) for r in rows if r.get("reachable")]
                if len(commits) == len(cluster.ids) and min(r.get("applied", 0) for r in rows) >= max(commits):
                    break
                assert time.monotonic() < deadline, f"managers did not all apply the writes: {rows}"
                await asyncio.sleep(0.05)

        asyncio.run(work())
        for manager_id in cluster.ids:
            cluster.kill(manager_id, signal.SIGTERM)  # a graceful stop folds the log
    finally:
        cluster.close()
    elected = 0
    for manager_id in cluster.ids:
        data_dir = cluster.data_dir(manager_id)
        assert not (data_dir / "events.jsonl").exists()  # only with --events-jsonl
        run = load_run(data_dir, check_events=True)
        assert run.summary["scenario"] == f"manager-{manager_id}"
        keys = set(run.of_type(ManagerCommandApplied.__name__)["command_key"])
        assert {f"k{i}" for i in range(20)} <= keys
        elected += len(run.of_type(LeaderElected.__name__))
        assert main(["report", str(data_dir)]) == 0 and (data_dir / "report.html").is_file()
    assert elected >= 1


def test_a_part_that_cannot_be_written_is_raised_on_the_managers_thread(tmp_path: Path) -> None:
    """Parts are written on a thread; a failure (here: the parts folder is gone, as on a lost or
    full disk) is raised on the caller's thread (at the next hand-over, flush or close), as a write
    there would have been, so it still stops the manager."""
    log = ParquetEventLog(tmp_path, manager_id=1, row_group_events=2, flush_interval_s=0.0)
    (tmp_path / PARTS_DIR).rmdir()
    _commands(log, 1, 2)  # a part is handed over; its write fails on the writer thread
    with pytest.raises(FileNotFoundError):
        log.close()  # waits for the writer: the failure surfaces here, not lost on the thread
