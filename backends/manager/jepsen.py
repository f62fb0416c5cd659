"""A Jepsen-style test of real managers: namespaces, a nemesis, concurrent clients, a checked history.

Theory of operation
-------------------
``run_jepsen`` starts N ``novacron manager`` processes, each in its own network namespace of a
``NetnsRig`` (veth pairs into a bridge), with a ``linkstage`` process beside each that carries
its outbound Raft links. A client process in a further namespace runs ``clients`` concurrent
clients against the managers' client API for ``duration_s`` seconds -- puts of fresh values
(register keys that change every few seconds, plus write-once keys) and linearizable gets
(ReadIndex at the leader) -- and writes every operation with its invocation and response time
(``CLOCK_MONOTONIC``, shared by every process on the machine) to a history file.

Meanwhile a nemesis, drawn in advance from ``seed`` (printed, so a failing run can be
replayed), partitions the managers (nftables, both ways), cuts the leader's inbound or
outbound traffic one way, SIGKILLs and restarts a manager, pauses one with SIGSTOP/SIGCONT, and
turns on "weather" (per-frame delay, jitter, reordering and duplication, and frame loss, in the
link stages -- the userspace stand-in for ``tc netem``, which this kernel lacks -- together with
nftables packet loss). A step aimed at "the leader" targets the manager whose ``LeaderElected``
event has the highest term in the managers' event logs when the step starts. Each fault is held
1-3 s, then healed.

At the end everything is healed, every manager is SIGKILLed and restarted from its disk, and the
client process reads every key once more. The verdict:

- the history, with the final reads appended, is checked with the core's linearizability
  checker (``novacron.raft.linearizability``) under a per-key budget, so a hard history ends as
  "unknown" instead of hanging; a put whose outcome the client did not learn (timeout, a broken
  connection, ``unknown``) may take effect at any later time or never; a put refused with
  ``not_leader`` or ``dropped`` was never applied and is left out;
- every acknowledged put of a write-once key must be read back after the restart.

Operations are classified as Jepsen does (Kingsbury, "Jepsen: ..." analyses): ok, fail (known
not to have happened) and info (indeterminate).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backends.host_load import load_average_text
from backends.manager.client import ManagerClient, ManagerUnavailable
from backends.manager.clientapi import PLANTED_BUG_ENV
from backends.manager.linkstage import Weather
from backends.manager.localcluster import REPO_ROOT
from backends.manager.netns import CLIENT_ID, NetnsRig, address
from novacron.federation.state import FederationStateMachine, Placement
from novacron.raft.linearizability import GET, PUT, Operation, check_history
from novacron.statemachine import encode_command

RAFT_PORT = 7000
CLIENT_PORT = 7200
STAGE_PORT_BASE = 7100
"""Manager i reaches peer j at 127.0.0.1:(STAGE_PORT_BASE + j) inside its own namespace."""
KEY_EPOCH_S = 3.0
"""Register keys change every few seconds, which keeps each key's history short for the checker."""
REGISTER_KEYS_PER_EPOCH = 4
CHECK_BUDGET_PER_KEY = 200_000
ATTEMPT_TIMEOUT_S = 2.0
OP_DEADLINE_S = 4.0


# -- the nemesis schedule ----------------------------------------------------------------------------

NEMESIS_KINDS = ("partition", "cut-into-leader", "cut-out-of-leader", "kill", "pause", "weather")


@dataclass(frozen=True, slots=True, kw_only=True)
class NemesisStep:
    at_s: float
    kind: str
    hold_s: float
    aim_at_leader: bool = False
    pick: int = 0
    """Which manager (or which minority) when not aimed at the leader: an index into sorted ids."""
    weather: Weather = Weather()
    """What a ``weather`` step asks every link stage for (drawn for every step, used by that kind)."""
    loss_percent: int = 0

    def describe(self) -> str:
        aim = "leader" if self.aim_at_leader else f"pick {self.pick}"
        w = self.weather
        extra = (f" delay {w.delay_ms:.0f}±{w.jitter_ms:.0f} ms dup {w.duplicate:.2f} drop {w.drop:.2f} "
                 f"loss {self.loss_percent}%") if self.kind == "weather" else f" ({aim})"
        return f"t={self.at_s:5.1f}s {self.kind:18s} hold {self.hold_s:.1f}s{extra}"


def plan_nemesis(seed: int, duration_s: float) -> list[NemesisStep]:
    """The whole schedule, from the seed alone (targets named by role are resolved at run time)."""
    rng = random.Random(seed)
    steps: list[NemesisStep] = []
    t = 2.0
    while True:
        hold = rng.uniform(1.0, 3.0)
        if t + hold > duration_s - 1.0:
            return steps
        kind = rng.choice(NEMESIS_KINDS)
        steps.append(NemesisStep(
            at_s=round(t, 2), kind=kind, hold_s=round(hold, 2), aim_at_leader=rng.random() < 0.6,
            pick=rng.randrange(1 << 16),
            weather=Weather(delay_ms=rng.uniform(1, 40), jitter_ms=rng.uniform(0, 40),
                            duplicate=rng.choice([0.0, 0.05, 0.3]), drop=rng.choice([0.0, 0.02, 0.1])),
            loss_percent=rng.choice([0, 5, 15])))
        t += hold + rng.uniform(0.5, 1.5)


# -- processes in the rig ----------------------------------------------------------------------------

class LeaderWatch:
    """The current leader as the managers' event logs tell it (highest-term ``LeaderElected``)."""

    def __init__(self, paths: dict[int, Path]) -> None:
        self.paths = paths
        self.offsets = dict.fromkeys(paths, 0)
        self.best: tuple[int, int] = (0, 0)
        self.elections = 0

    def leader(self) -> int:
        for manager_id, path in self.paths.items():
            with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
                f.seek(self.offsets[manager_id])
                data = f.read()
                complete = data[:data.rfind(b"\n") + 1]
                self.offsets[manager_id] += len(complete)
                for line in complete.splitlines():
                    if b'"LeaderElected"' in line:
                        record = json.loads(line)
                        self.elections += 1
                        self.best = max(self.best, (int(record["term"]), int(record["manager_id"])))
        return self.best[1]



def wan_weather(rtt_ms: float) -> dict[str, float]:
    """The link stage's weather for a WAN of ``rtt_ms`` round trip: half of it each way, with the
    simulation's latency law (a gamma tail of shape 2 and mean 5 % of the RTT; ``sim/network.py``)."""
    return {"delay_ms": rtt_ms / 2, "jitter_ms": rtt_ms * 0.05, "gamma_shape": 2.0}

class Rig:
    """The namespaces and every process started in them; ``close`` undoes all of it."""

    client_port = CLIENT_PORT
    """Where the members answer clients (a federation rig's agents answer on their own port)."""

    def __init__(self, size: int, work_dir: Path, snapshot_every: int, planted_bug: str | None = None,
                 tag: str | None = None) -> None:
        """``tag``: the namespaces of a rig another process built (``NetnsRig.tag``)."""
        self.ids = list(range(1, size + 1))
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_every = snapshot_every
        self.net = NetnsRig(self.ids, tag)
        self.managers: dict[int, subprocess.Popen[bytes]] = {}
        self.paused: set[int] = set()
        self.killed: set[int] = set()
        self.crashes: list[str] = []
        """Managers that exited without being killed by the nemesis (each one fails the run)."""
        self.others: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                               os.environ.get("PYTHONPATH")]))}
        if planted_bug:
            self.env[PLANTED_BUG_ENV] = planted_bug
        state = os.environ.get("NOVACRON_TEST_STATE")
        self.pid_dir = Path(state) if state else work_dir
        self.watch = LeaderWatch({i: self.data_dir(i) / "events.jsonl" for i in self.ids})

    def data_dir(self, manager_id: int) -> Path:
        return self.work_dir / f"manager-{manager_id}"

    def weather_file(self, manager_id: int) -> Path:
        return self.work_dir / f"weather-{manager_id}.json"

    def client_addresses(self, without: int | None = None) -> str:
        """The members' client addresses (a client's ``--managers``), less ``without`` (a lost one)."""
        return ",".join(f"{i}={address(i)}:{self.client_port}" for i in self.ids if i != without)

    def up(self) -> None:
        self.up_network()
        for i in self.ids:
            self.start(i)

    def up_network(self, weather: dict[str, float] | None = None) -> None:
        """The namespaces and the link stages (with ``weather`` from the start), no manager yet."""
        self.net.up()
        for i in self.ids:
            self.weather_file(i).write_text(json.dumps(weather or {}))
            routes = [f"--route={j}={STAGE_PORT_BASE + j}:{address(j)}:{RAFT_PORT}" for j in self.ids if j != i]
            self.others.append(self._spawn(i, [sys.executable, "-m", "backends.manager.linkstage", *routes,
                                               "--weather", str(self.weather_file(i)), "--seed", str(i)],
                                           f"stage-{i}.log"))

    def _spawn(self, member: int, argv: list[str], log_name: str,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.work_dir / log_name).open("ab") as log:
            process = subprocess.Popen(self.net.exec_argv(member, argv), stdout=log, stderr=subprocess.STDOUT,
                                       env={**self.env, **(extra_env or {})}, cwd=REPO_ROOT)
        (self.pid_dir / f"novacron-jepsen-{os.getpid()}-{process.pid}.pid").write_text(f"{process.pid}\n")
        return process

    def start(self, manager_id: int, extra_env: dict[str, str] | None = None) -> None:
        peers = ",".join(f"{j}={address(j)}:{RAFT_PORT}" if j == manager_id else f"{j}=127.0.0.1:{STAGE_PORT_BASE + j}"
                         for j in self.ids)
        self.managers[manager_id] = self._spawn(manager_id, [
            sys.executable, "-m", "novacron", "manager", "--id", str(manager_id), "--peers", peers,
            "--data-dir", str(self.data_dir(manager_id)), "--client-port", str(CLIENT_PORT),
            "--snapshot-every", str(self.snapshot_every), "--events-jsonl"], f"manager-{manager_id}.log", extra_env)

    def kill(self, manager_id: int) -> None:
        process = self.managers[manager_id]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        self.paused.discard(manager_id)
        self.killed.add(manager_id)

    def pause(self, manager_id: int) -> None:
        if self.managers[manager_id].poll() is None:
            self.managers[manager_id].send_signal(signal.SIGSTOP)
            self.paused.add(manager_id)

    def resume_all(self) -> None:
        for manager_id in list(self.paused):
            if self.managers[manager_id].poll() is None:
                self.managers[manager_id].send_signal(signal.SIGCONT)
        self.paused.clear()

    def set_weather(self, doc: dict[str, float]) -> None:
        for i in self.ids:
            tmp = self.weather_file(i).with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            tmp.replace(self.weather_file(i))

    def heal(self) -> None:
        self.net.heal()
        self.set_weather({})
        self.resume_all()
        for i in self.ids:
            if self.managers[i].poll() is not None:
                if i not in self.killed:
                    log_tail = (self.work_dir / f"manager-{i}.log").read_text(errors="replace")[-1500:]
                    self.crashes.append(f"manager {i} exited by itself ({self.managers[i].returncode}): {log_tail}")
                self.killed.discard(i)
                self.start(i)

    def run_client(self, argv: list[str], log_name: str,
                   module: str = "backends.manager.jepsen") -> subprocess.Popen[bytes]:
        """``python -m module argv`` inside the clients' namespace."""
        process = self._spawn(CLIENT_ID, [sys.executable, "-m", module, *argv], log_name)
        self.others.append(process)
        return process

    def start_workload(self, clients: int, duration_s: float, seed: int, history_file: Path,
                       *workload_args: str) -> subprocess.Popen[bytes]:
        """The Jepsen clients against every member for ``duration_s``, writing their history to
        ``history_file`` (their output: ``client.log``); ``wait_workload`` waits for them."""
        return self.run_client(["client", *workload_args, "--managers", self.client_addresses(),
                                "--clients", str(clients), "--duration-s", str(duration_s), "--seed", str(seed),
                                "--out", str(history_file)], "client.log")

    def wait_workload(self, process: subprocess.Popen[bytes], duration_s: float) -> None:
        wait_for_process(process, duration_s + 60, self.work_dir / "client.log", "the client process")

    def close(self) -> None:
        self.stop_processes()
        self.net.down()

    def close_and_record(self, report: JepsenReport, started_monotonic_s: float) -> None:
        """A run's ``finally``: everything this rig started stopped, then the run's wall time and
        the load average it ran at on ``report``."""
        self.close()
        report.wall_s = time.monotonic() - started_monotonic_s
        report.load_average = load_average_text()

    def stop_processes(self) -> None:
        # Helpers first, politely: a measuring process started managers of its own and stops them
        # when terminated (its ``finally``); SIGKILL would orphan them.
        for process in self.others:
            if process.poll() is None:
                process.terminate()
        for process in self.others:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        for process in [*self.managers.values(), *self.others]:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGCONT)
                    process.kill()
                process.wait(timeout=10)
        for pid_file in self.pid_dir.glob(f"novacron-jepsen-{os.getpid()}-*.pid"):
            pid_file.unlink()


class Nemesis:
    def __init__(self, rig: Rig, log: Any) -> None:
        self.rig = rig
        self.log = log
        self.applied: list[str] = []

    def target(self, step: NemesisStep) -> int:
        leader = self.rig.watch.leader()
        if step.aim_at_leader and leader:
            return leader
        return self.rig.ids[step.pick % len(self.rig.ids)]

    def begin(self, step: NemesisStep) -> None:
        rig, ids = self.rig, self.rig.ids
        target = self.target(step)
        if step.kind == "partition":
            minority = random.Random(step.pick).sample(ids, (len(ids) - 1) // 2 or 1)
            if step.aim_at_leader and target not in minority:
                minority[0] = target
            rig.net.partition(minority)
            what = f"partition {sorted(minority)} | rest"
        elif step.kind == "cut-into-leader":
            for other in ids:
                if other != target:
                    rig.net.cut(other, target)
            what = f"one-way cut: nothing reaches {target}"
        elif step.kind == "cut-out-of-leader":
            for other in ids:
                if other != target:
                    rig.net.cut(target, other)
            what = f"one-way cut: nothing leaves {target}"
        elif step.kind == "kill":
            rig.kill(target)
            what = f"SIGKILL {target}"
        elif step.kind == "pause":
            rig.pause(target)
            what = f"SIGSTOP {target}"
        else:
            rig.set_weather(asdict(step.weather))
            if step.loss_percent:
                rig.net.set_loss(step.loss_percent)
            what = "weather"
        line = f"{step.describe()} -> {what} (leader by events: {self.rig.watch.best[1] or '?'})"
        self.applied.append(line)
        self.log(f"nemesis {line}")

    def run(self, steps: list[NemesisStep], started: float, duration_s: float) -> None:
        for step in steps:
            time.sleep(max(0.0, started + step.at_s - time.monotonic()))
            self.begin(step)
            time.sleep(step.hold_s)
            self.rig.heal()
        time.sleep(max(0.0, started + duration_s - time.monotonic()))


# -- the orchestration -----------------------------------------------------------------------------

@dataclass
class JepsenReport:
    managers: int
    seed: int
    duration_s: float
    operations: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    """Operations counted by kind and outcome: ``"put ok"``, ``"put info"``, ``"get fail"``, ..."""
    verdict: str = "not run"
    violation_key: str | None = None
    undecided_keys: list[str] = field(default_factory=list)
    explored: int = 0
    lost_acknowledged: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    elections: int = 0
    nemesis: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    load_average: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict != "violation" and not self.lost_acknowledged and not self.crashes

    def summary(self) -> str:
        return (f"{self.managers} managers, seed {self.seed}, {self.duration_s:.0f} s: {self.operations} ops "
                f"({', '.join(f'{key} {n}' for key, n in sorted(self.outcomes.items()))}), "
                f"{self.elections} elections seen, {len(self.nemesis)} nemesis steps; "
                f"linearizability: {self.verdict} ({len(self.undecided_keys)} keys undecided, "
                f"{self.explored} configurations); acknowledged writes lost after restart: "
                f"{len(self.lost_acknowledged)}; managers crashed: {len(self.crashes)}; "
                f"wall {self.wall_s:.1f} s; load average {self.load_average}")


def run_jepsen(size: int, duration_s: float, seed: int, work_dir: Path, *, clients: int = 6,
               snapshot_every: int = 300, planted_bug: str | None = None, log: Any = print) -> JepsenReport:
    report = JepsenReport(managers=size, seed=seed, duration_s=duration_s)
    steps = plan_nemesis(seed, duration_s)
    log(f"jepsen: {size} managers, nemesis seed {seed} (replay: --seed {seed}), {len(steps)} steps")
    started_wall = time.monotonic()
    rig = Rig(size, work_dir, snapshot_every, planted_bug)
    try:
        rig.up()
        wait_for(lambda: rig.watch.leader() != 0, 30.0, "no manager was elected leader")
        history_file = work_dir / "history.jsonl"
        workload = rig.start_workload(clients, duration_s, seed, history_file)
        Nemesis(rig, log).run(steps, time.monotonic(), duration_s)
        report.nemesis = [s.describe() for s in steps]
        rig.heal()
        rig.wait_workload(workload, duration_s)
        rig.heal()  # notes any manager that died by itself meanwhile
        for i in rig.ids:
            rig.kill(i)
        for i in rig.ids:
            rig.start(i)
        report.elections = rig.watch.elections
        report.crashes = rig.crashes
        judge_with_final_reads(rig, rig.client_addresses(), read_history(history_file), report)
    finally:
        rig.close_and_record(report, started_wall)
    log(f"jepsen: {report.summary()}")
    return report


def judge_with_final_reads(rig: Rig, addresses: str, history: list[tuple[Operation, str]],
                           report: JepsenReport) -> None:
    """Read every key of ``history`` once more from the managers at ``addresses`` (the survivors of
    a run that lost some), then ``judge`` the history with those final reads appended."""
    keys_file, final_file = rig.work_dir / "keys.json", rig.work_dir / "final.json"
    keys_file.write_text(json.dumps(sorted({op.key for op, _ in history})))
    final = rig.run_client(["final", "--managers", addresses, "--keys", str(keys_file), "--out", str(final_file)],
                           "final.log")
    wait_for_process(final, 120, rig.work_dir / "final.log", "the final reads")
    judge(report, history, json.loads(final_file.read_text()))


def wait_for_process(process: subprocess.Popen[bytes], timeout_s: float, log_file: Path, what: str,
                     tail_chars: int = 2000) -> None:
    """Wait for a helper process (the clients, the final reads, an inner run); a non-zero exit
    raises with the tail of its log."""
    if process.wait(timeout=timeout_s) != 0:
        raise RuntimeError(f"{what} failed: {log_file.read_text()[-tail_chars:]}")


def wait_for(condition: Any, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.05)


def read_history(path: Path) -> list[tuple[Operation, str]]:
    """(operation, outcome ``ok``/``info``/``fail``) per line of the client's history file."""
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        response = math.inf if r["response_s"] is None else r["response_s"]
        out.append((Operation(r["client"], r["key"], r["kind"], r["value"], r["invoke_s"], response), r["outcome"]))
    return out


def judge(report: JepsenReport, history: list[tuple[Operation, str]], final: dict[str, str | None]) -> None:
    report.operations = len(history)
    ops: list[Operation] = []
    for op, outcome in history:
        key = f"{op.kind} {outcome}"
        report.outcomes[key] = report.outcomes.get(key, 0) + 1
        if outcome != "fail":
            ops.append(op)
    end = max((op.response_s for op in ops if op.completed), default=0.0) + 1.0
    final_reads = [Operation(-1, key, GET, value, end, end + 1.0) for key, value in final.items()]
    result = check_history(ops + final_reads, budget=CHECK_BUDGET_PER_KEY)
    report.verdict, report.violation_key = result.verdict, result.key
    report.undecided_keys, report.explored = list(result.unknown_keys), result.explored
    if result.key is not None:
        report.nemesis.append("violating history: " + "; ".join(op.describe() for op in result.history))
    report.lost_acknowledged = sorted(op.key for op, outcome in history
                                      if op.kind == PUT and outcome == "ok" and op.key.startswith("once-")
                                      and final.get(op.key) != op.value)


# -- the client process (runs inside the clients' namespace) -------------------------------------------

WORKLOADS = ("kv", "federation")
FEDERATION_READ_WINDOW = 8
"""Federation reads pick one of the last few VMs placed, or the next one some client will place."""


class Clients:
    def __init__(self, addresses: dict[int, tuple[str, int]], seed: int, workload: str = "kv") -> None:
        """``workload``: "kv" (the managers' key-value puts and gets) or "federation" (VM
        placements proposed to a federation group and reads of where a VM is placed)."""
        self.addresses = addresses
        self.ids = sorted(addresses)
        self.leader = self.ids[0]
        self.seed = seed
        self.workload = workload
        self.records: list[dict[str, Any]] = []
        self.placed: list[str] = []

    async def run(self, count: int, duration_s: float) -> None:
        start = time.monotonic()
        await asyncio.gather(*(self._client(c, start, start + duration_s) for c in range(count)))

    async def _client(self, client_id: int, start: float, until: float) -> None:
        rng = random.Random(self.seed * 1000 + client_id)
        connections: dict[int, ManagerClient] = {}
        n = 0
        try:
            while self.workload == "federation" and time.monotonic() < until:
                n += 1
                await self._federation_op(connections, client_id, n, rng)
            while self.workload == "kv" and time.monotonic() < until:
                n += 1
                epoch = int((time.monotonic() - start) / KEY_EPOCH_S)
                roll = rng.random()
                if roll < 0.2:
                    await self._put(connections, client_id, f"once-{client_id}-{n}", f"{client_id}.{n}")
                elif roll < 0.6:
                    key = f"reg-{epoch}-{rng.randrange(REGISTER_KEYS_PER_EPOCH)}"
                    await self._put(connections, client_id, key, f"{client_id}.{n}")
                else:
                    await self._get(connections, client_id, f"reg-{epoch}-{rng.randrange(REGISTER_KEYS_PER_EPOCH)}",
                                    first=rng.choice(self.ids))
        finally:
            for conn in connections.values():
                await conn.close()

    async def _federation_op(self, connections: dict[int, ManagerClient], client_id: int, n: int,
                             rng: random.Random) -> None:
        """Half the time place a fresh VM (a write-once key: ``once-`` keys are checked to survive),
        else read a recently placed VM or one about to be placed, so reads race with commits."""
        if rng.random() < 0.5:
            vm = f"once-vm-{client_id}-{n}"
            placement = Placement(cluster=rng.choice(self.ids), host=rng.randrange(16), cpu=1.0, memory_gib=1.0,
                                  group="")
            data = FederationStateMachine.place(f"place-{vm}", vm, placement)
            await self._put(connections, client_id, vm, f"{placement.cluster}:{placement.host}", data)
            self.placed.append(vm)
            return
        recent = self.placed[-FEDERATION_READ_WINDOW:] or [f"once-vm-{client_id}-{n + 1}"]
        key = rng.choice([*recent, f"once-vm-{client_id}-{n + 1}"])
        await self._get(connections, client_id, key, first=rng.choice(self.ids))

    def _record(self, client_id: int, key: str, kind: str, value: str | None, invoke_s: float,
                outcome: str) -> None:
        response = time.monotonic() if outcome == "ok" else None
        self.records.append({"client": client_id, "key": key, "kind": kind, "value": value, "invoke_s": invoke_s,
                             "response_s": response, "outcome": outcome})

    async def _connection(self, connections: dict[int, ManagerClient], manager_id: int) -> ManagerClient:
        conn = connections.get(manager_id)
        if conn is None or conn._task.done():
            if conn is not None:
                await conn.close()
            conn = await ManagerClient.connect(*self.addresses[manager_id], timeout_s=0.5)
            connections[manager_id] = conn
        return conn

    def _next_target(self, target: int, hint: int) -> int:
        if hint in self.addresses and hint != target:
            return hint
        return self.ids[(self.ids.index(target) + 1) % len(self.ids)]

    async def _put(self, connections: dict[int, ManagerClient], client_id: int, key: str, value: str,
                   data: bytes | None = None) -> None:
        """Propose ``data`` (default: the KV ``put`` of ``value``), which makes ``key`` read ``value``."""
        invoke = time.monotonic()
        data = encode_command(op="put", key=key, value=value) if data is None else data
        target = self.leader
        while time.monotonic() < invoke + OP_DEADLINE_S:
            try:
                conn = await self._connection(connections, target)
            except ManagerUnavailable:
                target = self._next_target(target, 0)
                await asyncio.sleep(0.05)
                continue  # never sent: safe to try elsewhere
            try:
                reply = await conn.propose(data, timeout_s=ATTEMPT_TIMEOUT_S)
            except (TimeoutError, ManagerUnavailable):
                connections.pop(target, None)
                await conn.close()
                self._record(client_id, key, PUT, value, invoke, "info")
                return
            if reply.get("ok"):
                self.leader = target
                self._record(client_id, key, PUT, value, invoke, "ok")
                return
            if reply.get("error") != "not_leader":
                # "dropped": overwritten, never applied; "unknown": may still commit.
                self._record(client_id, key, PUT, value, invoke, "fail" if reply.get("error") == "dropped" else "info")
                return
            target = self._next_target(target, int(reply.get("leader") or 0))
            await asyncio.sleep(0.02)
        self._record(client_id, key, PUT, value, invoke, "fail")

    async def _get(self, connections: dict[int, ManagerClient], client_id: int, key: str,
                   first: int | None = None) -> None:
        """A read starts at ``first`` (clients pick any manager; a correct one redirects to its leader)."""
        invoke = time.monotonic()
        target = first if first is not None else self.leader
        while time.monotonic() < invoke + OP_DEADLINE_S:
            try:
                conn = await self._connection(connections, target)
                reply = await conn.read(key, timeout_s=ATTEMPT_TIMEOUT_S)
            except (TimeoutError, ManagerUnavailable):
                conn_gone = connections.pop(target, None)
                if conn_gone is not None:
                    await conn_gone.close()
                target = self._next_target(target, 0)
                continue
            if reply.get("ok"):
                self.leader = target
                self._record(client_id, key, GET, reply.get("value"), invoke, "ok")
                return
            target = self._next_target(target, int(reply.get("leader") or 0))
            await asyncio.sleep(0.02)
        self._record(client_id, key, GET, None, invoke, "fail")  # a read with no answer tells nothing


async def final_reads(addresses: dict[int, tuple[str, int]], keys: list[str], timeout_s: float) -> dict[str, Any]:
    """Every key read once (ReadIndex) after the restart; waits for a leader up to ``timeout_s``."""
    clients = Clients(addresses, 0)
    connections: dict[int, ManagerClient] = {}
    values: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        for key in keys:
            while key not in values:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no linearizable read of {key!r} within {timeout_s} s of the restart")
                before = len(clients.records)
                await clients._get(connections, 0, key)
                record = clients.records[before]
                if record["outcome"] == "ok":
                    values[key] = record["value"]
    finally:
        for conn in connections.values():
            await conn.close()
    return values


def parse_addresses(text: str) -> dict[int, tuple[str, int]]:
    out = {}
    for item in text.split(","):
        node, _, rest = item.partition("=")
        host, _, port = rest.rpartition(":")
        out[int(node)] = (host, int(port))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.manager.jepsen",
                                     description="Jepsen-style run of real managers in network namespaces (root).")
    sub = parser.add_subparsers(dest="mode", required=True)
    run = sub.add_parser("run", help="the whole test: rig, managers, nemesis, clients, checker")
    run.add_argument("--managers", type=int, default=3)
    run.add_argument("--duration-s", type=float, default=60.0)
    run.add_argument("--seed", type=int, default=None, help="nemesis seed (default: random, printed)")
    run.add_argument("--clients", type=int, default=6)
    run.add_argument("--work-dir", type=Path, required=True)
    run.add_argument("--report", type=Path, default=None, help="write the report as JSON here")
    client = sub.add_parser("client", help="(internal) the workload, inside the clients' namespace")
    client.add_argument("--managers", required=True)
    client.add_argument("--clients", type=int, default=6)
    client.add_argument("--duration-s", type=float, required=True)
    client.add_argument("--seed", type=int, default=0)
    client.add_argument("--out", type=Path, required=True)
    client.add_argument("--workload", choices=WORKLOADS, default="kv")
    final = sub.add_parser("final", help="(internal) read every key after the restart")
    final.add_argument("--managers", required=True)
    final.add_argument("--keys", type=Path, required=True)
    final.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.mode == "client":
        clients = Clients(parse_addresses(args.managers), args.seed, args.workload)
        asyncio.run(clients.run(args.clients, args.duration_s))
        args.out.write_text("".join(json.dumps(r) + "\n" for r in clients.records))
        return 0
    if args.mode == "final":
        keys = json.loads(args.keys.read_text())
        args.out.write_text(json.dumps(asyncio.run(final_reads(parse_addresses(args.managers), keys, 60.0))))
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    report = run_jepsen(args.managers, args.duration_s, seed, args.work_dir, clients=args.clients)
    if args.report is not None:
        args.report.write_text(json.dumps(asdict(report), indent=1))
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
