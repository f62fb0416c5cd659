"""Raft timing of real managers on an emulated network: election after SIGKILL, formation, partition recovery.

Theory of operation
-------------------
The same two experiments as the simulation's ``sim/raft/experiments.py``, on real ``novacron
manager`` processes in the namespace rig of ``jepsen.Rig``, with every Raft frame delayed by the
link stages (``linkstage``, the userspace stand-in for ``tc netem``, which this kernel lacks)
using the simulation's latency law: one-way delay at least ``rtt/2 - jitter`` plus a gamma tail
(shape 2) of mean ``jitter``. The caller passes the profile's ``rtt_ms`` and ``jitter_ms`` (this
module does not import the simulation).

The measuring runs in the clients' namespace (``python -m backends.manager.raft_timing inner``),
since only from there can it reach the managers' client ports; it starts and kills the managers
through ``ip netns exec``, which works from any namespace, and stops them when it is terminated.
Status requests take the bridge directly, not the delayed links. Every status request wakes a
manager's Ready loop, so they are sent only every ``STATUS_POLL_S`` (the resolution of the
formation times); a new leader is seen instead in the managers' ``events.jsonl`` (its
``LeaderElected`` line, written in the Ready cycle that made it leader), read every ``EVENTS_POLL_S``
without disturbing the managers.

- Formation: each trial boots a fresh cluster. The processes are started, finish their imports and
  wait at a start barrier (``NOVACRON_MANAGER_START_BARRIER``; each says so with a ready file, and
  the barrier opens only when all five have); creating the barrier file starts them within about
  a millisecond of each other, as a simulated cluster boots at t = 0. The time
  runs from the barrier until every manager reports a committed entry (``commit >= 1``), the
  simulation's ``_formed``. It includes what a simulation leaves out: opening SQLite, the fsync
  of the bootstrap state, the first fsynced votes.
- Election after SIGKILL: one cluster; in each trial the leader is SIGKILLed at a random point of
  its heartbeat cycle (a wait of 2-3 heartbeat intervals after the cluster is whole again, as the
  simulation does), and the time runs until a survivor reports itself leader in a higher term.
  The killed manager is restarted from its disk and the next trial waits until it follows the
  leader again.
- Partition recovery (``sim.raft.experiments.partition_recovery_times``, the same definition): on
  one cluster that is whole, 2-3 heartbeat intervals later, every frame to and from the leader is
  dropped by the link stages (its isolation: their weather files, re-read every 10 ms; frames
  already delayed still arrive) until a new leader is elected (its ``LeaderElected``) and
  ``PARTITION_HOLD_S`` plus 0-1 heartbeat interval has passed; then the weather heals. The time
  runs from the heal -- the moment the later of the two stages on the path (the isolated
  manager's and the new leader's) noted that it applied the healed weather -- until the isolated
  manager reports the new leader and a commit index at least the new leader's at the heal
  (polled every ``PARTITION_POLL_S``, only that manager). Partitions are frame drops in the
  stage rather than nftables rules, so the managers' TCP connections stay up as the
  simulation's links do (a packet filter would add TCP's retransmission back-off).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.host_load import load_average_text
from backends.manager.cli import BARRIER_READY_SUFFIX, START_BARRIER_ENV
from backends.manager.client import ManagerClient, ManagerUnavailable
from backends.manager.eventlog import read_events
from backends.manager.jepsen import CLIENT_PORT, Rig, wait_for_process
from backends.manager.linkstage import applied_path
from backends.manager.netns import address

HEARTBEAT_S = 0.05
"""The managers' default heartbeat: 5 ticks of 10 ms (``RaftConfig``)."""
STATUS_POLL_S = 0.02
EVENTS_POLL_S = 0.002
GIVE_UP_S = 30.0
INNER_TIMEOUT_S = 3600
PARTITION_HOLD_S = 0.5
"""As the simulation's ``PARTITION_HOLD_S``: how long the old leader stays cut off after a new one is elected."""
PARTITION_POLL_S = 0.002
"""Status polls of the one isolated manager after the heal (the resolution of the recovery times)."""
GAMMA_SHAPE = 2.0


def link_weather(rtt_ms: float, jitter_ms: float, loss: float = 0.0) -> dict[str, float]:
    """The link stages' weather for a profile: its latency law and, with ``loss``, every frame (one
    Raft message) dropped with that probability, as the simulation drops a message."""
    weather = {"delay_ms": rtt_ms / 2, "jitter_ms": jitter_ms, "gamma_shape": GAMMA_SHAPE}
    if loss:
        weather["drop"] = loss
    return weather


@dataclass
class TimingResult:
    managers: int
    rtt_ms: float
    jitter_ms: float
    election_ms: list[float] = field(default_factory=list)
    vote_round_ms: list[float] = field(default_factory=list)
    """Per election: the new leader's candidate -> leader time (the rest of ``election_ms`` is the
    wait for an election timeout and the PreVote round)."""
    formation_ms: list[float] = field(default_factory=list)
    partition_recovery_ms: list[float] = field(default_factory=list)
    load_average: str = ""
    loss: float = 0.0


def measure(rtt_ms: float, jitter_ms: float, *, managers: int, election_trials: int, formation_trials: int,
            work_dir: Path, seed: int, partition_trials: int = 0, loss: float = 0.0) -> TimingResult:
    """Run both experiments on real managers; needs root (it builds the namespace rig)."""
    rig = Rig(managers, work_dir, snapshot_every=5000)
    out = work_dir / "timing.json"
    try:
        rig.up_network(link_weather(rtt_ms, jitter_ms, loss))
        inner = rig.run_client(["inner", "--tag", rig.net.tag, "--managers", str(managers), "--work-dir",
                                str(work_dir), "--election-trials", str(election_trials), "--formation-trials",
                                str(formation_trials), "--partition-trials", str(partition_trials),
                                "--seed", str(seed), "--out", str(out)],
                               "timing.log", module="backends.manager.raft_timing")
        wait_for_process(inner, INNER_TIMEOUT_S, work_dir / "timing.log", "the timing run", tail_chars=3000)
    finally:
        rig.close()
    measured = json.loads(out.read_text())
    return TimingResult(managers, rtt_ms, jitter_ms, measured["election_ms"], measured["vote_round_ms"],
                        measured["formation_ms"], measured["partition_recovery_ms"],
                        load_average_text(), loss)


# -- inside the clients' namespace ------------------------------------------------------------------

class Poller:
    """One open status connection per manager, reopened after the manager restarts."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.clients: dict[int, ManagerClient] = {}

    async def status(self, manager_id: int) -> dict[str, Any] | None:
        try:
            client = self.clients.get(manager_id)
            if client is None or client._task.done():
                client = await ManagerClient.connect(address(manager_id), CLIENT_PORT, timeout_s=0.2)
                self.clients[manager_id] = client
            return await client.status(timeout_s=0.5)
        except (TimeoutError, ManagerUnavailable):
            stale = self.clients.pop(manager_id, None)
            if stale is not None:
                await stale.close()
            return None

    async def statuses(self, ids: list[int] | None = None) -> dict[int, dict[str, Any] | None]:
        wanted = ids if ids is not None else self.ids
        rows = await asyncio.gather(*(self.status(i) for i in wanted))
        return dict(zip(wanted, rows, strict=True))

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()


async def wait_until(poller: Poller, condition: Any, what: str, ids: list[int] | None = None) -> float:
    """Poll statuses until ``condition(rows)`` holds; returns the monotonic time it was seen."""
    deadline = time.monotonic() + GIVE_UP_S
    while True:
        rows = await poller.statuses(ids)
        if condition(rows):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {GIVE_UP_S} s: {rows}")
        await asyncio.sleep(STATUS_POLL_S)


def formed(rows: dict[int, dict[str, Any] | None]) -> bool:
    return all(r is not None and r["commit"] >= 1 for r in rows.values())


def whole(rows: dict[int, dict[str, Any] | None]) -> bool:
    """Every manager up, one leader that all follow, everything committed known everywhere."""
    if not formed(rows):
        return False
    leaders = {r["leader"] for r in rows.values() if r is not None}
    return len(leaders) == 1 and 0 not in leaders


@contextlib.asynccontextmanager
async def managers_running(rig: Rig, poller: Poller, env: dict[str, str] | None = None) -> AsyncIterator[None]:
    """Every manager of ``rig`` started (with ``env``) for the block; afterwards the poller closed
    and every process stopped, whatever the block raised."""
    try:
        for i in rig.ids:
            rig.start(i, env)
        yield
    finally:
        await poller.close()
        rig.stop_processes()


async def formation_trial(args: argparse.Namespace, trial: int) -> float:
    rig = Rig(args.managers, args.work_dir / f"formation-{trial}", 5000, tag=args.tag)
    barrier = rig.work_dir / "go"
    poller = Poller(rig.ids)
    async with managers_running(rig, poller, {START_BARRIER_ENV: str(barrier)}):
        await wait_at_barrier(barrier, len(rig.ids))
        started = time.monotonic()
        barrier.touch()
        done = await wait_until(poller, formed, "formation")
        return (done - started) * 1000


async def wait_at_barrier(barrier: Path, managers: int) -> None:
    """Until every manager process has finished its imports and waits at ``barrier``."""
    deadline = time.monotonic() + GIVE_UP_S
    while len(list(barrier.parent.glob(f"{barrier.name}{BARRIER_READY_SUFFIX}*"))) < managers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the managers did not reach the start barrier within {GIVE_UP_S} s")
        await asyncio.sleep(0.05)


async def settled_leader(rig: Rig, poller: Poller, rng: random.Random) -> tuple[int, int]:
    """Wait for a whole cluster and 2-3 heartbeat intervals more (a random point of the leader's
    heartbeat cycle); return the leader and its term, with the event logs read up to now."""
    await wait_until(poller, whole, "a whole cluster")
    await asyncio.sleep(2 * HEARTBEAT_S + rng.random() * HEARTBEAT_S)
    rows = await poller.statuses()
    leader = next(i for i, r in rows.items() if r is not None and r["role"] == "leader")
    term: int = rows[leader]["term"]  # type: ignore[index]
    rig.watch.leader()
    return leader, term


async def election_trials(args: argparse.Namespace, rng: random.Random) -> tuple[list[float], list[float]]:
    """(kill -> new leader, the new leader's own candidate -> leader time), in ms, per trial."""
    rig = Rig(args.managers, args.work_dir / "elections", 5000, tag=args.tag)
    poller = Poller(rig.ids)
    times_ms: list[float] = []
    vote_rounds_ms: list[float] = []
    async with managers_running(rig, poller):
        for _ in range(args.election_trials):
            leader, old_term = await settled_leader(rig, poller, rng)
            killed_at = time.monotonic()
            rig.kill(leader)
            times_ms.append((await wait_for_new_leader(rig, old_term) - killed_at) * 1000)
            vote_rounds_ms.append(vote_round_ms(rig))
            rig.start(leader)
        return times_ms, vote_rounds_ms


async def partition_trials(args: argparse.Namespace, rng: random.Random) -> list[float]:
    """Heal -> the isolated old leader follows the new one and knows all it had committed, in ms."""
    rig = Rig(args.managers, args.work_dir / "partitions", 5000, tag=args.tag)
    weather = Weather(args.work_dir)
    poller = Poller(rig.ids)
    times_ms: list[float] = []
    async with managers_running(rig, poller):
        try:
            for _ in range(args.partition_trials):
                leader, old_term = await settled_leader(rig, poller, rng)
                weather.isolate(leader)
                await wait_for_new_leader(rig, old_term, besides=leader)
                await asyncio.sleep(PARTITION_HOLD_S + rng.random() * HEARTBEAT_S)
                new_id = rig.watch.leader()
                committed = (await poller.status(new_id) or {}).get("commit", 0)
                written_at = time.monotonic()
                weather.heal()
                while not caught_up(await poller.status(leader), new_id, committed):
                    if time.monotonic() > written_at + GIVE_UP_S:
                        raise TimeoutError(f"manager {leader} did not rejoin leader {new_id} within {GIVE_UP_S} s")
                    await asyncio.sleep(PARTITION_POLL_S)
                done_at = time.monotonic()
                healed_at = await weather.applied_after(written_at, (leader, new_id))
                times_ms.append((done_at - healed_at) * 1000)
            return times_ms
        finally:
            weather.heal()


def caught_up(row: dict[str, Any] | None, leader: int, committed: int) -> bool:
    return row is not None and row["leader"] == leader and row["commit"] >= committed


class Weather:
    """The link stages' weather files of the outer rig: the profile, or the profile with every frame
    to and from one manager dropped (its isolation; frames already delayed still arrive)."""

    def __init__(self, work_dir: Path) -> None:
        self.files = sorted(work_dir.glob("weather-*.json"))
        self.profile = json.loads(self.files[0].read_text())

    def isolate(self, manager_id: int) -> None:
        for path in self.files:
            owner = int(path.stem.split("-")[1])
            doc = ({**self.profile, "drop": 1.0} if owner == manager_id
                   else {**self.profile, "links": {str(manager_id): {"drop": 1.0}}})
            self._write(path, doc)

    def heal(self) -> None:
        for path in self.files:
            self._write(path, self.profile)

    async def applied_after(self, written_at: float, managers: tuple[int, ...]) -> float:
        """When the last of ``managers``' stages applied the weather written at ``written_at``
        (each re-reads its file every ``linkstage.WEATHER_POLL_S`` and notes when it did)."""
        deadline = written_at + GIVE_UP_S
        while True:
            times = [self._applied_s(self.files[0].with_name(f"weather-{m}.json")) for m in managers]
            if all(t >= written_at for t in times):
                return max(times)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the link stages of {managers} did not apply the new weather")
            await asyncio.sleep(PARTITION_POLL_S)

    @staticmethod
    def _applied_s(path: Path) -> float:
        try:
            return float(applied_path(path).read_text())
        except (FileNotFoundError, ValueError):  # not yet written, or caught mid-write
            return float("-inf")

    @staticmethod
    def _write(path: Path, doc: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)


async def wait_for_new_leader(rig: Rig, old_term: int, besides: int = 0) -> float:
    """The monotonic time a ``LeaderElected`` of a term above ``old_term`` (of a manager other than
    ``besides``) appeared in an event log."""
    deadline = time.monotonic() + GIVE_UP_S
    while rig.watch.best[0] <= old_term or rig.watch.best[1] == besides:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no leader above term {old_term} within {GIVE_UP_S} s")
        await asyncio.sleep(EVENTS_POLL_S)
        rig.watch.leader()
    return time.monotonic()


def vote_round_ms(rig: Rig) -> float:
    """The new leader's time from becoming candidate (``TermStarted`` of its term) to leader, by its
    own clock: the vote round trip with its fsyncs, the part of an election that is not waiting."""
    term, manager_id = rig.watch.best
    started = elected = None
    for record in read_events(rig.data_dir(manager_id)):
        if record.get("term") == term and record["type"] == "TermStarted":
            started = record["t_s"]
        if record.get("term") == term and record["type"] == "LeaderElected":
            elected = record["t_s"]
    return (elected - started) * 1000 if started is not None and elected is not None else float("nan")


async def inner_main(args: argparse.Namespace) -> dict[str, list[float]]:
    # Terminated (the rig is being torn down): cancel, so every ``finally`` stops its managers.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
    rng = random.Random(args.seed)
    formation = [await formation_trial(args, k) for k in range(args.formation_trials)]
    elections, vote_rounds = await election_trials(args, rng)
    partitions = await partition_trials(args, rng) if args.partition_trials else []
    return {"formation_ms": formation, "election_ms": elections, "vote_round_ms": vote_rounds,
            "partition_recovery_ms": partitions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.manager.raft_timing")
    sub = parser.add_subparsers(dest="mode", required=True)
    inner = sub.add_parser("inner", help="(internal) the measuring, inside the clients' namespace")
    inner.add_argument("--tag", required=True)
    inner.add_argument("--managers", type=int, required=True)
    inner.add_argument("--work-dir", type=Path, required=True)
    inner.add_argument("--election-trials", type=int, required=True)
    inner.add_argument("--formation-trials", type=int, required=True)
    inner.add_argument("--partition-trials", type=int, default=0)
    inner.add_argument("--seed", type=int, default=0)
    inner.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(inner_main(args))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
