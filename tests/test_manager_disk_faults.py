"""A real manager process against a failing disk: full, fsync error, torn last write of the log.

Each test runs once per log store (``--log-store segment`` and ``sqlite``) with ONE manager (a
cluster of one voter), so its own log is the only place a write can survive: whatever it
acknowledged must be read back after a restart, and it must stop (exit 1 with one line on stderr,
no traceback) or recover, never acknowledge what it did not persist. Clients talk to it through
the client API only.

- Full disk: the data directory is a 2 MiB tmpfs mount; clients write until the manager stops.
  The mount is then grown (``mount -o remount,size=``) and the manager restarted.
- fsync error: ``device-mapper`` is not available on this kernel (``dmsetup`` finds no driver),
  so a tiny ``LD_PRELOAD`` shim, compiled here with gcc, replaces ``fsync``/``fdatasync`` in the
  manager process: while a trigger file exists they fail with ``EIO`` (mode ``eio``) or never
  return (mode ``hang``). SQLite and Python's ``os.fdatasync`` (the segment log) call libc's
  ``fdatasync`` through the dynamic linker, so the shim sits exactly where a failing disk would
  report. After the trigger appears, no proposal invoked later may be acknowledged; a restart
  with the fault still present must refuse to start (the store fsyncs its files before opening
  them); once it is gone every acknowledged write is there.
- Torn last write: the ``hang`` shim holds the manager inside the fsync of its last save (written,
  not acknowledged); it is SIGKILLed, and SQLite's WAL is truncated in the middle of that
  transaction's commit frame (layout: https://www.sqlite.org/fileformat.html#the_write_ahead_log),
  or the second half of the segment log's last record is zeroed (what a preallocated segment
  holds where a torn write did not reach). The restarted manager must recover to the last complete
  save: every acknowledged write present, the torn proposal not committed.

Root is needed for tmpfs mounts; with ``CI=true`` the tests fail instead of skipping without it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backends.manager.client import ManagerClient, ManagerUnavailable
from backends.manager.localcluster import LocalCluster
from backends.manager.segment_log import encode_record, read_records
from novacron.statemachine import encode_command
from tests.unavailable import unavailable

pytestmark = [pytest.mark.slow, pytest.mark.diskfaults]

SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* While the file named by NOVACRON_FSYNC_FAULT_TRIGGER exists, fsync and fdatasync fail with EIO
   (NOVACRON_FSYNC_FAULT_MODE=eio) or block forever (=hang): a disk that reports an error, or one
   that stops answering mid-write. */
static int faulty(void) {
    const char *trigger = getenv("NOVACRON_FSYNC_FAULT_TRIGGER");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

static int fail(void) {
    const char *mode = getenv("NOVACRON_FSYNC_FAULT_MODE");
    if (mode != NULL && mode[0] == 'h') {
        for (;;) pause();
    }
    errno = EIO;
    return -1;
}

int fsync(int fd) {
    static int (*real)(int);
    if (faulty()) return fail();
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (faulty()) return fail();
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
"""
WAL_HEADER_BYTES = 32
WAL_FRAME_HEADER_BYTES = 24
WORKERS = 8
VALUE_BYTES = 512


@pytest.fixture(scope="module")
def fsync_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        unavailable("gcc is not installed (needed to build the fsync fault shim)")
        raise AssertionError("unreachable")
    build = tmp_path_factory.mktemp("shim")
    (build / "fsync_fault.c").write_text(SHIM_SOURCE)
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", str(build / "fsync_fault.so"), str(build / "fsync_fault.c"),
                    "-ldl"], check=True, capture_output=True, timeout=60)
    return build / "fsync_fault.so"


@pytest.fixture(params=["segment", "sqlite"])
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """One manager on each log store (``--log-store``)."""
    made = LocalCluster(tmp_path / "cluster", size=1, extra_args=("--log-store", request.param))
    try:
        yield made
    finally:
        made.close()
        print(f"--- manager 1 log ---\n{made.log_text(1)[-3000:]}")


@pytest.fixture
def small_tmpfs(cluster: LocalCluster) -> Iterator[Path]:
    """The manager's data directory on a 2 MiB tmpfs (unmounted afterwards, also on failure)."""
    mount_point = cluster.data_dir(1)
    mount_point.mkdir(parents=True)
    if os.geteuid() != 0:
        unavailable("not root: cannot mount a tmpfs for the full-disk test")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "novacron-full-disk", str(mount_point)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        unavailable(f"mount -t tmpfs failed: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        cluster.close()
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


@dataclass
class Workload:
    """Puts of unique keys from ``WORKERS`` concurrent clients; what was invoked when, what was acked."""

    acked: dict[str, str] = field(default_factory=dict)
    invoked_s: dict[str, float] = field(default_factory=dict)
    acked_s: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stop: bool = False

    async def run(self, address: tuple[str, int], until: float) -> None:
        await asyncio.gather(*(self._worker(address, w, until) for w in range(WORKERS)))

    async def _worker(self, address: tuple[str, int], worker: int, until: float) -> None:
        try:
            client = await ManagerClient.connect(*address)
        except ManagerUnavailable as exc:
            self.errors.append(str(exc))
            return
        try:
            for n in range(1_000_000):
                if self.stop or time.monotonic() > until:
                    return
                key, value = f"w{worker}-{n}", f"{worker}-{n}-" + "v" * VALUE_BYTES
                self.invoked_s[key] = time.monotonic()
                try:
                    reply = await client.propose(encode_command(op="put", key=key, value=value), timeout_s=2.0)
                except (TimeoutError, ManagerUnavailable) as exc:
                    self.errors.append(f"{key}: {exc or 'timeout'}")
                    return
                if reply.get("ok"):
                    self.acked[key], self.acked_s[key] = value, time.monotonic()
                else:
                    self.errors.append(f"{key}: {reply}")
        finally:
            await client.close()


async def read_back(address: tuple[str, int], keys: list[str]) -> dict[str, str | None]:
    """Linearizable reads (ReadIndex) of ``keys`` through the client API."""
    client = await ManagerClient.connect(*address)
    try:
        replies = await asyncio.gather(*(client.read(key, timeout_s=10.0) for key in keys))
    finally:
        await client.close()
    bad = [r for r in replies if not r.get("ok")]
    assert not bad, f"reads failed: {bad[:3]}"
    return {key: reply.get("value") for key, reply in zip(keys, replies, strict=True)}


def assert_one_line_storage_stop(cluster: LocalCluster, status: int | None, stops_so_far: int = 1) -> str:
    """Exit status 1 and, per stop, exactly one line of output besides the start banner."""
    assert status == 1, f"the manager should exit 1 after a storage failure, got {status}"
    text = cluster.log_text(1)
    lines = [line for line in text.splitlines() if line.strip() and ": raft " not in line]
    assert "Traceback" not in text, "a storage failure must not print a traceback"
    assert len(lines) == stops_so_far and "storage failure" in lines[-1], (
        f"expected one line per stop saying why, got {lines}")
    return lines[-1]


async def wait_until(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s} s")
        await asyncio.sleep(0.01)


# -- a full disk ----------------------------------------------------------------------------------

def test_a_full_disk_stops_the_manager_and_every_acknowledged_write_survives(
        cluster: LocalCluster, small_tmpfs: Path) -> None:
    asyncio.run(_full_disk(cluster, small_tmpfs))


async def _full_disk(cluster: LocalCluster, mount_point: Path) -> None:
    cluster.start(1)
    await cluster.wait_for_leader()
    load = Workload()
    writing = asyncio.create_task(load.run(cluster.client_addresses[1], time.monotonic() + 60))
    status = await asyncio.to_thread(cluster.wait_exit, 1, 60)
    load.stop = True
    await writing
    line = assert_one_line_storage_stop(cluster, status)
    assert "full" in line or "No space" in line, line
    assert len(load.acked) > 50, f"only {len(load.acked)} writes fit before the disk filled"
    print(f"full disk: {len(load.acked)} writes acknowledged before: {line}")

    subprocess.run(["mount", "-o", "remount,size=64m", str(mount_point)], check=True, timeout=30)
    cluster.start(1)
    await cluster.wait_for_leader()
    values = await read_back(cluster.client_addresses[1], sorted(load.acked))
    missing = [k for k, v in load.acked.items() if values[k] != v]
    assert not missing, f"{len(missing)} acknowledged writes lost after the disk filled: {missing[:5]}"


# -- an fsync error -------------------------------------------------------------------------------

def test_an_fsync_error_stops_the_manager_before_it_acknowledges_anything_more(
        cluster: LocalCluster, fsync_shim: Path, tmp_path: Path) -> None:
    asyncio.run(_fsync_error(cluster, fsync_shim, tmp_path / "fsync-fails"))


def shim_env(shim: Path, trigger: Path, mode: str) -> dict[str, str]:
    return {"LD_PRELOAD": str(shim), "NOVACRON_FSYNC_FAULT_TRIGGER": str(trigger), "NOVACRON_FSYNC_FAULT_MODE": mode}


async def _fsync_error(cluster: LocalCluster, shim: Path, trigger: Path) -> None:
    env = shim_env(shim, trigger, "eio")
    cluster.start(1, env)
    await cluster.wait_for_leader()
    load = Workload()
    writing = asyncio.create_task(load.run(cluster.client_addresses[1], time.monotonic() + 60))
    await wait_until(lambda: len(load.acked) >= 300 or writing.done(), 30)
    trigger.touch()
    fault_s = time.monotonic()
    status = await asyncio.to_thread(cluster.wait_exit, 1, 30)
    load.stop = True
    await writing
    line = assert_one_line_storage_stop(cluster, status)
    late = [k for k in load.acked if load.invoked_s[k] > fault_s]
    assert not late, f"acknowledged although invoked after fsync started failing: {late[:5]}"
    print(f"fsync EIO: {len(load.acked)} acknowledged; stopped with: {line}")

    # Still failing: the store's opening fsync fails, so the manager refuses to serve.
    cluster.start(1, env)
    refused = assert_one_line_storage_stop(cluster, await asyncio.to_thread(cluster.wait_exit, 1, 30), 2)
    assert "Input/output error" in refused, "the store must refuse at its opening fsync, before reading the WAL"
    print(f"restart with fsync still failing: {refused}")

    trigger.unlink()
    cluster.start(1, env)
    await cluster.wait_for_leader()
    values = await read_back(cluster.client_addresses[1], sorted(load.invoked_s))
    missing = [k for k, v in load.acked.items() if values[k] != v]
    assert not missing, f"{len(missing)} acknowledged writes lost after the fsync error: {missing[:5]}"
    unknown_present = sum(1 for k in load.invoked_s if k not in load.acked and values[k] is not None)
    print(f"after the restart: every acknowledged write present; {unknown_present} writes whose outcome "
          "the client never learned were committed (allowed: their outcome was unknown)")


# -- a torn last write -------------------------------------------------------------------------------

def wal_commit_frames(wal: bytes) -> tuple[int, list[int]]:
    """(page size, byte offsets of the WAL's commit frames), following its checksummed header."""
    magic, _version, page_size = struct.unpack(">III", wal[:12])
    assert magic in (0x377F0682, 0x377F0683), f"not a SQLite WAL (magic {magic:#x})"
    salts = wal[16:24]
    frame_bytes = WAL_FRAME_HEADER_BYTES + page_size
    commits = []
    for offset in range(WAL_HEADER_BYTES, len(wal) - frame_bytes + 1, frame_bytes):
        if wal[offset + 8:offset + 16] != salts:
            break  # a frame left over from before the WAL last restarted: not part of this log
        (db_pages_after_commit,) = struct.unpack(">I", wal[offset + 4:offset + 8])
        if db_pages_after_commit:
            commits.append(offset)
    return page_size, commits


def tear_last_wal_commit(data_dir: Path) -> str:
    """Truncate SQLite's WAL in the middle of its last commit frame."""
    wal_path = data_dir / "raft.sqlite3-wal"
    wal = wal_path.read_bytes()
    page_size, commits = wal_commit_frames(wal)
    assert len(commits) >= 2, f"the WAL holds {len(commits)} commit frames"
    torn_at = commits[-1] + WAL_FRAME_HEADER_BYTES + page_size // 2
    with wal_path.open("r+b") as f:
        f.truncate(torn_at)
    return f"WAL {len(wal)} bytes, {len(commits)} commits, truncated to {torn_at} (mid commit frame)"


def tear_last_segment_record(data_dir: Path) -> str:
    """Zero the second half of the last record of the last segment: the part a torn write never
    got onto the preallocated disk."""
    segment = sorted((data_dir / "raft-wal").glob("*.wal"))[-1]
    records, end = read_records(segment.read_bytes())
    assert len(records) >= 2, f"{segment} holds {len(records)} records"
    last = records[-1]
    start = end - len(encode_record(last.snapshot, last.entries, last.hard_state))
    torn_at = (start + end) // 2
    with segment.open("r+b") as f:
        f.seek(torn_at)
        f.write(bytes(end - torn_at))
    return f"{segment.name}: {len(records)} records, the last one ({start}..{end}) zeroed from {torn_at}"


def test_a_torn_last_wal_write_is_discarded_and_nothing_acknowledged_is_lost(
        cluster: LocalCluster, fsync_shim: Path, tmp_path: Path) -> None:
    asyncio.run(_torn_write(cluster, fsync_shim, tmp_path / "fsync-hangs"))


async def _torn_write(cluster: LocalCluster, shim: Path, trigger: Path) -> None:
    cluster.start(1, shim_env(shim, trigger, "hang"))
    await cluster.wait_for_leader()
    load = Workload()
    writing = asyncio.create_task(load.run(cluster.client_addresses[1], time.monotonic() + 60))
    await wait_until(lambda: len(load.acked) >= 300 or writing.done(), 30)
    trigger.touch()  # the next transaction reaches the WAL, then its fsync never returns
    await asyncio.sleep(1.0)
    acked_before_kill = len(load.acked)
    await asyncio.sleep(0.5)
    assert len(load.acked) == acked_before_kill, "acknowledgements went on while every fsync hung"
    cluster.kill(1, signal.SIGKILL)
    load.stop = True
    await writing
    trigger.unlink()

    tear = tear_last_segment_record if "segment" in cluster.extra_args else tear_last_wal_commit
    print(f"{tear(cluster.data_dir(1))}; {len(load.acked)} writes acknowledged")

    cluster.start(1)
    await cluster.wait_for_leader()
    values = await read_back(cluster.client_addresses[1], sorted(load.invoked_s))
    missing = [k for k, v in load.acked.items() if values[k] != v]
    assert not missing, f"{len(missing)} acknowledged writes lost with the torn WAL: {missing[:5]}"
    torn_keys = [k for k in load.invoked_s if k not in load.acked]
    assert torn_keys, "some proposals should have been caught in the hung fsync"
    committed = [k for k in torn_keys if values[k] is not None]
    print(f"{len(torn_keys)} proposals unacknowledged at the kill; {len(committed)} of them committed "
          "after the restart (allowed: their outcome was unknown)")
