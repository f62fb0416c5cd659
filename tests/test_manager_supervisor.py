"""Self-healing: a real manager that leaks memory is restarted by the supervisor, and no acknowledged
entry is lost.

Three ``novacron manager`` processes (``LocalCluster``) armed with ``--debug-leak-mib-s``; the test
writes entries through the cluster, sends SIGUSR1 to the leader (its leak starts), and keeps
writing. The supervisor (``backends.manager.supervisor``), watching every manager's RSS, must
restart the leader -- and only it -- once its RSS stays over the limit; afterwards every
acknowledged entry is applied by all three managers at the position it was acknowledged at (their
``events.jsonl``), readable through the cluster, and the restarted manager has caught up. The
processes are killed by the fixture, also on failure; nothing here skips, so under ``CI=true`` a
manager that cannot start fails the test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.manager.client import ClusterClient
from backends.manager.debug_leak import MIB, InjectedLeak
from backends.manager.localcluster import LocalCluster
from backends.manager.supervisor import RssWatch, Supervisor, rss_bytes
from tests.test_manager_cluster import Acked, applied_sequence, propose_all, wait_applied

LEAK_MIB_S = 80.0
HEADROOM_MIB = 100
"""The limit is the managers' largest RSS after the first writes plus this."""
ENTRIES_PER_PHASE = 150
STARTUP_TIMEOUT_S = 60.0
"""A manager process imports pandas and pyarrow before it listens: on a loaded 2-core machine that
alone took 7 s (0.9 s of CPU), so the cluster's first leader and the restarted manager's catch-up
get a minute."""


def test_rss_watch_restarts_only_after_consecutive_polls_above_the_limit() -> None:
    watch = RssWatch(rss_limit_bytes=100, breach_polls=3)
    assert [watch.observe(1, rss) for rss in (150, 150, 90, 150, 150)] == [False] * 5, "a dip resets the count"
    assert watch.observe(1, 150), "the third poll in a row above the limit is a breach"
    assert not watch.observe(2, 150), "managers are counted apart"
    watch.forget(1)
    assert not watch.observe(1, 150), "a restarted manager counts again from zero"
    assert not RssWatch(rss_limit_bytes=100, breach_polls=1).observe(1, 100), "at the limit is not above it"
    with pytest.raises(ValueError, match="breach_polls=0"):
        RssWatch(rss_limit_bytes=100, breach_polls=0)


def test_rss_of_this_process_and_of_a_missing_one() -> None:
    own = rss_bytes(os.getpid())
    assert own is not None and own > 10 * MIB
    assert rss_bytes(2**22 + 12345) is None


def test_injected_leak_holds_resident_memory_once_started() -> None:
    async def scenario() -> tuple[int, int, int]:
        leak = InjectedLeak(mib_per_s=40.0)
        before = leak.held_bytes
        leak.start()
        await asyncio.sleep(0.5)
        held = leak.held_bytes
        await leak.stop()
        return before, held, leak.held_bytes

    before, held, after = asyncio.run(scenario())
    assert before == 0 and 10 * MIB <= held <= 30 * MIB and after == 0
    with pytest.raises(ValueError, match="--debug-leak-mib-s 0"):
        InjectedLeak(0.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    made = LocalCluster(tmp_path / "cluster", extra_args=("--events-jsonl", "--debug-leak-mib-s", str(LEAK_MIB_S)))
    try:
        yield made
    finally:
        made.close_and_print_logs()


@pytest.mark.slow
def test_supervisor_restarts_a_leaking_manager_without_losing_an_acknowledged_entry(cluster: LocalCluster) -> None:
    asyncio.run(_leak_scenario(cluster))


async def _leak_scenario(cluster: LocalCluster) -> None:
    cluster.start_all()
    leader = await cluster.wait_for_leader(timeout_s=STARTUP_TIMEOUT_S)
    client = ClusterClient(cluster.client_addresses)
    acked: Acked = {}
    counter = itertools.count()
    supervision: asyncio.Task[None] | None = None
    try:
        await propose_all(client, [f"before-{next(counter)}" for _ in range(ENTRIES_PER_PHASE)], acked)
        baseline = max(rss_bytes(cluster.processes[i].pid) or 0 for i in cluster.ids)
        limit = baseline + HEADROOM_MIB * MIB
        supervisor = Supervisor(cluster, rss_limit_bytes=limit, poll_s=0.2, breach_polls=3)
        supervision = asyncio.create_task(supervisor.run())
        leaking = leader["id"]
        old_pid = cluster.processes[leaking].pid
        os.kill(old_pid, signal.SIGUSR1)
        leaked_at = time.monotonic()

        async def until_restarted() -> None:
            while not supervisor.restarts and time.monotonic() - leaked_at < 20:
                await asyncio.sleep(0.05)

        during = [f"during-{next(counter)}" for _ in range(ENTRIES_PER_PHASE)]
        await asyncio.gather(propose_all(client, during, acked), until_restarted())
        assert supervisor.restarts, f"no restart within 20 s; peak RSS {supervisor.peak_rss_bytes}, limit {limit}"
        restart = supervisor.restarts[0]
        await cluster.wait_for_leader(timeout_s=STARTUP_TIMEOUT_S)
        await propose_all(client, [f"after-{next(counter)}" for _ in range(ENTRIES_PER_PHASE)], acked)
        last_index = max(index for index, _ in acked.values())
        await wait_applied(cluster, last_index, timeout_s=STARTUP_TIMEOUT_S)
        caught_up_s = time.monotonic()
        assert len(acked) == 3 * ENTRIES_PER_PHASE, "a majority stayed up: every proposal must be acknowledged"
        for key in ("before-0", f"after-{3 * ENTRIES_PER_PHASE - 1}"):
            read = await client.read(key)
            assert read["ok"] and read["value"] == key, read
    finally:
        if supervision is not None:
            supervision.cancel()
        await client.close()

    assert [(r.manager_id, r.reason) for r in supervisor.restarts] == [(leaking, "rss_limit")], supervisor.restarts
    assert restart.old_pid == old_pid and restart.new_pid != old_pid and restart.rss_bytes > limit
    new_rss = rss_bytes(restart.new_pid)
    assert new_rss is not None and new_rss < limit, "the restarted manager must not carry the leak"
    for manager_id in cluster.ids:
        applied = applied_sequence(cluster.data_dir(manager_id))
        position_of = {(index, position): key for index, position, key in applied}
        missing = [key for key, where in acked.items() if position_of.get(where) != key]
        assert not missing, f"manager {manager_id} lost {len(missing)} acknowledged entries, e.g. {missing[:3]}"
    print(f"leak to restart decision {restart.decided_s - leaked_at:.2f} s, "
          f"stop {restart.stopped_s - restart.decided_s:.2f} s, "
          f"decision to caught up {caught_up_s - restart.decided_s:.2f} s (incl. {ENTRIES_PER_PHASE} more writes); "
          f"RSS {restart.rss_bytes / MIB:.0f} MiB over a {limit / MIB:.0f} MiB limit; load average {os.getloadavg()}")
