"""A real container migration: a stateful service moved between two hosts' namespaces while a client talks to it.

Theory of operation
-------------------
Two "hosts" are members 1 and 2 of a ``NetnsRig`` (``backends.manager.netns``: one network
namespace each, veth pairs into a bridge); the client lives in the rig's client namespace. The
link out of host 1 is shaped with ``tc tbf`` to ``link_mbit`` (this kernel has no netem; rate
limiting with tbf works, LAB.md), so the migration stream and the source's replies share a link
of known rate. Each side of the service runs in its own cgroup v2 group
(``novacron-ct<pid>-src`` / ``-dst`` under the cgroup2 mount; ``<pid>`` is this process, so
concurrent runs never collide and a dead run's groups are killed and removed by the next one):

1. the source ``statesvc`` starts in host 1 (``state_mib`` of state, ``dirty_rate_mib_s`` over
   ``wws_mib``), the restore side in host 2 in incoming mode (as QEMU's ``-incoming``: the
   process exists before the move, so its start-up is not downtime -- CRIU would start it at
   restore time), and the client (``stateclient``) follows the registry;
2. after ``warmup_s`` of replies, ``precopy`` (in host 1's namespace) runs the pre-copy rounds,
   the stop-and-copy, the commit and the switch-over, and reports its times;
3. after ``after_s`` more the client stops and its log is checked (``check_replies``).

The downtime is from the source's freeze to the first reply the client got from the restored
service (both ``CLOCK_MONOTONIC``); the total from the first round's start to that reply.
Everything started is stopped in ``finally`` (cgroups killed and removed, namespaces deleted),
also when the run fails or is interrupted. CRIU is not used: Debian's CRIU 3.17 fails
``criu check`` on this kernel ("Unexpected rt vDSO area bounds") and no other build is in the
package registries; the checkpoint is application-level (see ``statesvc``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from backends.manager.netns import NetnsRig, RigUnavailable, address, run

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_PORT = 7400
INCOMING_PORT = 7401
CGROUP_PREFIX = "novacron-ct"
READY_TIMEOUT_S = 30.0
SOURCE, DEST, AUX = 1, 2, 0


class ContainerRigError(RuntimeError):
    """The migration ran but failed (a process died, a timeout, a bad report)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerMigrationSpec:
    state_mib: float = 16.0
    wws_mib: float = 4.0
    dirty_rate_mib_s: float = 2.0
    link_mbit: float = 400.0
    final_mib: float = 0.25
    """stop pre-copying once the pages marked since the last round are at most this"""
    max_rounds: int = 8
    warmup_s: float = 1.0
    after_s: float = 1.0
    client_interval_ms: float = 2.0
    hold_replies_after: int = 0
    """> 0: the source applies but never answers requests after this many replies (a lost reply
    the client must retry at the restored service, which must answer it without applying it again)"""

    def __post_init__(self) -> None:
        limits = {"state_mib": (0.01, 4096.0), "wws_mib": (0.0, self.state_mib), "dirty_rate_mib_s": (0.0, 1024.0),
                  "link_mbit": (1.0, 100_000.0), "final_mib": (0.0, 4096.0), "max_rounds": (1, 100),
                  "warmup_s": (0.0, 600.0), "after_s": (0.0, 600.0), "client_interval_ms": (0.1, 1000.0),
                  "hold_replies_after": (0, 1_000_000)}
        for f in fields(self):
            low, high = limits[f.name]
            value = getattr(self, f.name)
            if not low <= value <= high:
                raise ValueError(f"{f.name} = {value!r}: allowed {low:g} to {high:g}")


@dataclass(frozen=True, slots=True)
class ReplyCheck:
    replies: int
    problems: tuple[str, ...]
    """every lost, repeated, reordered or wrong reply, in words (empty: a clean history)"""
    switch_s: float | None
    """when the first reply from the restored service arrived (None: never)"""
    replies_after: int
    longest_gap_s: float
    median_gap_s: float
    """the client's usual time between replies: the same run's baseline for the downtime"""
    retried: int = 0
    """requests the client had to send more than once (after the move or a broken connection)"""


def check_replies(lines: list[str], source: str, dest: str) -> ReplyCheck:
    """Check a client log: requests 1, 2, ... each answered once, in order, with its own number as
    the value (one client, a counter from 0), by ``source`` and then only by ``dest``."""
    problems: list[str] = []
    expected, switch_s, after, last_t, retried = 1, None, 0, None, 0
    gaps: list[float] = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 5 or not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in (*parts[:3], parts[4])):
            problems.append(f"line {number}: not a reply: {line!r}")
            continue
        t, request, value, server = float(parts[0]), int(parts[1]), int(parts[2]), parts[3]
        retried += int(parts[4]) > 1
        if request != expected:
            problems.append(f"line {number}: request {request} where {expected} was next (lost or reordered)")
        if value != request:
            problems.append(f"line {number}: request {request} got value {value} (lost or repeated update)")
        if server == dest:
            switch_s = t if switch_s is None else switch_s
            after += 1
        elif server != source or switch_s is not None:
            problems.append(f"line {number}: reply from {server} after the switch to {dest}")
        if last_t is not None:
            gaps.append(t - last_t)
        expected, last_t = request + 1, t
    return ReplyCheck(len(lines), tuple(problems), switch_s, after, max(gaps, default=0.0),
                      statistics.median(gaps) if gaps else 0.0, retried)


@dataclass(frozen=True, slots=True)
class ContainerMigrationReport:
    spec: ContainerMigrationSpec
    state_pages: int
    round_pages: tuple[int, ...]
    round_s: tuple[float, ...]
    final_pages: int
    link_mib_s: float
    """the migration stream's measured rate in its first (full) round"""
    dirty_rate_mib_s: float
    """the service's page writes per second from the first round to the freeze, as measured"""
    freeze_wait_s: float
    """from writing cgroup.freeze to 'frozen 1'"""
    switchover_s: float
    """freeze to the restore side's acknowledgement"""
    downtime_s: float
    """freeze to the first reply from the restored service"""
    total_s: float
    digests_equal: bool
    replies: ReplyCheck

    def summary(self) -> str:
        s = self.spec
        return (f"state {s.state_mib:g} MiB, dirty {s.dirty_rate_mib_s:g} MiB/s over {s.wws_mib:g} MiB, link "
                f"{s.link_mbit:g} Mbit/s ({self.link_mib_s:.1f} MiB/s measured; dirty {self.dirty_rate_mib_s:.1f} "
                f"MiB/s measured): rounds {list(self.round_pages)} "
                f"pages, final {self.final_pages}; downtime {self.downtime_s * 1000:.1f} ms = "
                f"{self.downtime_s / max(self.replies.median_gap_s, 1e-9):.1f} x the usual reply gap (switch-over "
                f"{self.switchover_s * 1000:.1f} ms, freeze {self.freeze_wait_s * 1000:.2f} ms), total "
                f"{self.total_s:.2f} s; {self.replies.replies} replies ({self.replies.replies_after} after), "
                f"longest gap {self.replies.longest_gap_s * 1000:.1f} ms, {self.replies.retried} retried; "
                f"state equal {self.digests_equal}; problems {len(self.replies.problems)}")


def report_from_json(doc: object) -> ContainerMigrationReport:
    """A report from its ``dataclasses.asdict`` form (``container-migrate``'s runs.json), every
    field checked against its annotation; ``ValueError`` naming the first field that is wrong."""
    report = typed(doc, ContainerMigrationReport, "run")
    assert isinstance(report, ContainerMigrationReport)
    if not report.link_mib_s > 0 or report.state_pages < 1 or not report.round_pages:
        raise ValueError(f"run: link_mib_s {report.link_mib_s!r}, state_pages {report.state_pages!r} and "
                         f"round_pages {list(report.round_pages)!r}: allowed > 0, >= 1 and not empty")
    return report


def typed(value: object, hint: Any, where: str) -> object:
    """``value`` (decoded JSON) as ``hint``: a dataclass of these, a tuple, a float, an int, a bool, a
    string, or ``X | None``."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        names = [f.name for f in fields(hint) if f.init]
        if not isinstance(value, dict) or not set(value) <= set(names):
            raise ValueError(f"{where}: {value!r:.80}: allowed an object with keys {', '.join(names)}")
        return hint(**{key: typed(item, hints[key], f"{where}.{key}") for key, item in value.items()})
    if isinstance(hint, types.UnionType):
        if value is None and type(None) in hint.__args__:
            return None
        hint = next(arg for arg in hint.__args__ if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{where}: {value!r:.80}: allowed a list")
        return tuple(typed(item, typing.get_args(hint)[0], f"{where}[{i}]") for i, item in enumerate(value))
    wanted = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}[hint]
    if isinstance(value, bool) is not (hint is bool) or not isinstance(value, wanted):
        raise ValueError(f"{where}: {value!r:.80}: allowed a {hint.__name__}")
    return float(value) if hint is float else value


def cgroup2_root(mountinfo: str | None = None) -> Path:
    """The cgroup v2 mount (``/sys/fs/cgroup`` on a pure v2 host, ``.../unified`` on a hybrid one)."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            return Path(left.split()[4])
    raise RigUnavailable("no cgroup2 file system is mounted (cgroup v2 is needed for cgroup.freeze)")


def remove_stale_cgroups(root: Path) -> None:
    """Kill and remove the groups of runs whose process is gone (killed before their cleanup)."""
    for group in root.glob(f"{CGROUP_PREFIX}*"):
        match = re.fullmatch(rf"{CGROUP_PREFIX}(\d+)-\w+", group.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            remove_cgroup(group)


def remove_cgroup(group: Path) -> None:
    if not group.exists():
        return
    with contextlib.suppress(OSError):
        (group / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.02)  # the killed tasks are still leaving
    left = (group / "cgroup.procs").read_text().split()
    raise ContainerRigError(f"cgroup {group} could not be removed (tasks left: {left})")


class ContainerRig:
    """The namespaces, the two cgroups and every process of one run; ``close`` undoes all of it."""

    def __init__(self, work_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.work_dir = work_dir
        self.net = NetnsRig([SOURCE, DEST])
        self.root = cgroup2_root()
        self.groups = {side: self.root / f"{CGROUP_PREFIX}{os.getpid()}-{name}"
                       for side, name in ((SOURCE, "src"), (DEST, "dst"), (AUX, "aux"))}
        """the source, the restore side, and the client with the controller (so a run killed before
        its cleanup leaves nothing running either: the next run's ``remove_stale_cgroups`` kills it)"""
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                               os.environ.get("PYTHONPATH")])),
                    **(extra_env or {})}
        self.registry = work_dir / "registry"

    def up(self, link_mbit: float) -> None:
        if os.geteuid() != 0:
            raise RigUnavailable("network namespaces and cgroups need root")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_cgroups(self.root)
        self.net.up()
        try:
            for group in self.groups.values():
                group.mkdir()
            run(["ip", "netns", "exec", self.net.namespace(SOURCE), "tc", "qdisc", "add", "dev", "eth0", "root",
                 "tbf", "rate", f"{link_mbit:g}mbit", "burst", "256kb", "latency", "100ms"])
        except (OSError, RigUnavailable) as exc:
            self.close()
            raise RigUnavailable(f"cgroups or tbf could not be set up: {exc}") from None

    def spawn(self, argv: list[str], log_name: str, group: Path | None = None) -> subprocess.Popen[bytes]:
        """``argv`` started with its output in ``log_name``, in ``group`` if given."""
        if group is not None:
            argv = in_cgroup(group, argv)
        with (self.work_dir / log_name).open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO_ROOT)
        self.processes.append(process)
        return process

    def start_service(self, side: int, spec: ContainerMigrationSpec) -> Path:
        ready = self.work_dir / f"ready-{side}.json"
        argv = [sys.executable, "-m", "backends.lab.statesvc", "--name", f"host{side}",
                "--state-mib", f"{spec.state_mib:g}", "--wws-mib", f"{spec.wws_mib:g}",
                "--dirty-rate-mib-s", f"{spec.dirty_rate_mib_s:g}", "--listen", f"{address(side)}:{SERVICE_PORT}",
                "--ready-file", str(ready)]
        if side == DEST:
            argv += ["--incoming", f"{address(side)}:{INCOMING_PORT}"]
        else:
            argv += ["--hold-replies-after", str(spec.hold_replies_after)]
        process = self.spawn(self.net.exec_argv(side, argv), f"service-{side}.log", self.groups[side])
        wait_for(lambda: ready.exists() and ready.stat().st_size > 0, process, f"service on host{side}")
        return ready

    def start_client(self, spec: ContainerMigrationSpec) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.work_dir / "client.log"
        self.registry.write_text(f"{address(SOURCE)}:{SERVICE_PORT}")
        argv = [sys.executable, "-m", "backends.lab.stateclient", "--registry", str(self.registry), "--log", str(log),
                "--interval-ms", f"{spec.client_interval_ms:g}"]
        client = self.spawn(self.net.exec_argv(0, argv), "client.err", self.groups[AUX])
        wait_for(lambda: log.exists() and log.stat().st_size > 0, client, "the client's first reply")
        return client, log

    def precopy(self, ready: Path, spec: ContainerMigrationSpec) -> dict[str, object]:
        """The migration controller, in host 1's namespace (``nsenter`` keeps the cgroup mount visible)."""
        argv = in_cgroup(self.groups[AUX], [
            "nsenter", f"--net=/run/netns/{self.net.namespace(SOURCE)}", sys.executable, "-m",
            "backends.lab.precopy", "--ready-file", str(ready), "--cgroup", str(self.groups[SOURCE]),
            "--to", f"{address(DEST)}:{INCOMING_PORT}", "--final-mib", f"{spec.final_mib:g}",
            "--max-rounds", str(spec.max_rounds), "--registry", str(self.registry),
            "--new-endpoint", f"{address(DEST)}:{SERVICE_PORT}"])
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=REPO_ROOT, timeout=600)
        if done.returncode != 0:
            raise ContainerRigError(f"precopy failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return report

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        errors = []
        for group in self.groups.values():
            try:
                remove_cgroup(group)
            except ContainerRigError as exc:
                errors.append(str(exc))
        self.net.down()
        if errors:
            raise ContainerRigError("; ".join(errors))


def in_cgroup(group: Path, argv: list[str]) -> list[str]:
    """``argv`` run by a shell that first joins ``group``, so it and its children are in it from birth."""
    return ["sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec "$@"', "sh", *argv]


def wait_for(ready: object, process: subprocess.Popen[bytes], what: str) -> None:
    assert callable(ready)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            raise ContainerRigError(f"{what}: the process exited ({process.returncode}) before it was ready")
        if time.monotonic() > deadline:
            raise ContainerRigError(f"{what}: not ready after {READY_TIMEOUT_S:g} s")
        time.sleep(0.02)


def stop_client(client: subprocess.Popen[bytes]) -> None:
    client.send_signal(signal.SIGTERM)
    try:
        client.wait(timeout=5)
    except subprocess.TimeoutExpired:  # stuck retrying: the check of its log will say why
        client.kill()
        client.wait(timeout=5)


def migrate_container(spec: ContainerMigrationSpec, work_dir: Path,
                      extra_env: dict[str, str] | None = None) -> ContainerMigrationReport:
    """One run (see the module docstring); ``RigUnavailable`` when namespaces or cgroups cannot be made.
    ``extra_env`` goes to every process (tests plant bugs with it)."""
    rig = ContainerRig(work_dir, extra_env)
    rig.up(spec.link_mbit)
    try:
        src_ready = rig.start_service(SOURCE, spec)
        rig.start_service(DEST, spec)
        client, log = rig.start_client(spec)
        time.sleep(spec.warmup_s)
        raw = rig.precopy(src_ready, spec)
        time.sleep(spec.after_s)
        stop_client(client)
        lines = log.read_text().splitlines()
    finally:
        rig.close()
    return build_report(spec, raw, check_replies(lines, f"host{SOURCE}", f"host{DEST}"))


def build_report(spec: ContainerMigrationSpec, raw: dict[str, object], replies: ReplyCheck) -> ContainerMigrationReport:
    def number(key: str) -> float:
        value = raw[key]
        assert isinstance(value, int | float), key
        return float(value)

    def numbers(key: str) -> tuple[float, ...]:
        value = raw[key]
        assert isinstance(value, list), key
        return tuple(float(v) for v in value)

    pages, seconds = numbers("round_pages"), numbers("round_s")
    freeze = number("freeze_s")
    first_reply = replies.switch_s if replies.switch_s is not None else float("nan")
    return ContainerMigrationReport(
        spec=spec, state_pages=int(pages[0]), round_pages=tuple(int(p) for p in pages), round_s=seconds,
        final_pages=int(number("final_pages")), link_mib_s=pages[0] / 256 / seconds[0],
        dirty_rate_mib_s=number("page_writes") / 256 / (freeze - number("started_s")),
        freeze_wait_s=number("frozen_s") - freeze, switchover_s=number("acked_s") - freeze,
        downtime_s=first_reply - freeze, total_s=first_reply - number("started_s"),
        digests_equal=raw["source_digest"] == raw["restored_digest"] != "", replies=replies)
