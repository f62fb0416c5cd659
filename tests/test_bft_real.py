"""Four real PBFT replica processes on loopback (``python -m backends.bft.process``), Ed25519 signed.

- One replica is Byzantine (the first primary, equivocating and casting conflicting votes); the
  correct three keep committing (a view change replaces the liar) and agree on every executed
  digest (Castro and Liskov 2002, section 2.3: safety with at most f = 1 faulty replica).
- SIGKILL of a replica while requests are in flight: the others keep committing; the killed one,
  restarted from its SQLite log, catches up (state transfer) and agrees with the others.

Every process is killed by the fixture's finalizer, also when an assertion fails. Nothing here
needs root or a service that could be missing, so there is nothing to skip: under ``CI=true``
every failure to start is a failure.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.bft.client import RemoteBftClient
from backends.bft.localcluster import LocalBftCluster

pytestmark = [pytest.mark.bft, pytest.mark.slow]
KEY_SEED = 21
REQUESTS = int(os.environ.get("NOVACRON_BFT_REAL_REQUESTS", "30"))


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[LocalBftCluster]:
    made = LocalBftCluster(tmp_path, key_seed=KEY_SEED)
    try:
        yield made
    finally:
        made.close()
        print(made.logs())


async def wait_started(client: RemoteBftClient, ids: list[int], timeout_s: float = 20.0) -> None:
    deadline_s = time.monotonic() + timeout_s
    for replica in ids:
        while await client.status(replica) is None:
            assert time.monotonic() < deadline_s, f"replica {replica} did not start within {timeout_s:g} s"
            await asyncio.sleep(0.1)


async def statuses(client: RemoteBftClient, ids: list[int]) -> dict[int, dict[str, Any]]:
    found = {}
    for replica in ids:
        status = await client.status(replica)
        assert status is not None, f"replica {replica} stopped answering"
        found[replica] = status
    return found


def assert_agree(found: dict[int, dict[str, Any]]) -> None:
    """Every sequence number executed by two correct replicas carries the same digest."""
    seen: dict[str, tuple[str, int]] = {}
    for replica, status in found.items():
        for seq, digest in status["digests"].items():
            first = seen.setdefault(str(seq), (digest, replica))
            assert first[0] == digest, f"seq {seq}: replica {replica} executed {digest}, replica {first[1]} {first[0]}"


async def wait_caught_up(client: RemoteBftClient, ids: list[int], target: int, timeout_s: float = 20.0) -> None:
    deadline_s = time.monotonic() + timeout_s
    while True:
        found = await statuses(client, ids)
        if all(s["executed"] >= target for s in found.values()):
            return
        assert time.monotonic() < deadline_s, {r: s["executed"] for r, s in found.items()}
        await asyncio.sleep(0.2)


def drive(replicas: LocalBftCluster, body: Callable[[RemoteBftClient], Awaitable[None]]) -> None:
    """Run ``body`` with a client of all four replicas, once every one answers; close it after."""

    async def scenario() -> None:
        client = RemoteBftClient(replicas.peers, key_seed=KEY_SEED)
        try:
            await wait_started(client, [1, 2, 3, 4])
            await body(client)
        finally:
            await client.close()

    asyncio.run(scenario())


def test_three_correct_replicas_keep_committing_next_to_an_equivocating_primary(replicas: LocalBftCluster) -> None:
    replicas.start(1, byzantine="equivocate,conflicting-votes,forge")
    for replica in (2, 3, 4):
        replicas.start(replica)

    async def body(client: RemoteBftClient) -> None:
        for i in range(REQUESTS):
            assert await client.call(b"put k%d %d" % (i % 5, i)) == b"ok"
        assert await client.call(b"get k%d" % ((REQUESTS - 1) % 5)) == b"%d" % (REQUESTS - 1)
        correct = await statuses(client, [2, 3, 4])
        assert all(s["view"] >= 1 for s in correct.values()), "the equivocating primary must be replaced"
        assert sum(s["rejected"] for s in correct.values()) > 0, "forged votes must have been rejected"
        await wait_caught_up(client, [2, 3, 4], max(s["executed"] for s in correct.values()))
        assert_agree(await statuses(client, [2, 3, 4]))

    drive(replicas, body)


def test_a_sigkilled_replica_restarts_from_its_log_and_catches_up(replicas: LocalBftCluster) -> None:
    for replica in (1, 2, 3, 4):
        replicas.start(replica)

    async def body(client: RemoteBftClient) -> None:
        for i in range(REQUESTS):
            if i == REQUESTS // 3:
                replicas.kill(1)  # the primary: a view change must follow
            if i == 2 * REQUESTS // 3:
                replicas.start(1)
            assert await client.call(b"put k%d %d" % (i % 5, i)) == b"ok"
        target = max(s["executed"] for s in (await statuses(client, [2, 3, 4])).values())
        await wait_started(client, [1])
        await wait_caught_up(client, [1, 2, 3, 4], target)
        assert_agree(await statuses(client, [1, 2, 3, 4]))

    drive(replicas, body)
