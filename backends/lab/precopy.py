"""Live migration of a ``statesvc`` process by iterative pre-copy: cgroup freezer, dirty map, page runs.

Theory of operation
-------------------
The same convergence loop as ``criu pre-dump`` / ``criu dump`` (criu.org, "Iterative
migration") and QEMU's RAM pre-copy, done from outside the process:

1. Round 0: freeze the service's cgroup (cgroup v2 ``cgroup.freeze``, waiting for ``frozen 1``
   in ``cgroup.events``), clear its dirty map through ``/proc/PID/mem``, thaw, then send every
   page of its arena while it runs. A round ends when the restore side acknowledges it (so its
   time is the link's, not the time to fill a socket buffer).
2. While the pages marked since the last round are more than ``final_mib``, and fewer than
   ``max_rounds`` rounds ran: freeze, read and clear the map, thaw, send the marked pages (a page
   written again while being copied is marked again, so a torn copy is resent next round).
3. Stop-and-copy: freeze and leave frozen, read the map, send the marked pages plus the header,
   commit. The restore side applies them, starts serving and acknowledges; the client registry
   is pointed at the new endpoint; once the restored service has answered (so the check costs
   no downtime) the frozen source's payload is hashed, to compare with the restore side's
   digest; then every process of the source cgroup is killed (``cgroup.kill``). A failure
   before the acknowledgement thaws the source, which carries on.

It runs inside the source host's network namespace (entered with ``nsenter --net``, which,
unlike ``ip netns exec``, keeps the cgroup file system mounted), so its stream crosses the
emulated link. It prints one JSON report: per round the pages sent and its seconds, the freeze
and acknowledgement times (``CLOCK_MONOTONIC``, shared with the client's log) and the digests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from backends.lab.statesvc import (
    ACK,
    COMMIT,
    DIGEST,
    FRAME,
    PAGE,
    PAGES,
    PLANTED_BUG_ENV,
    ROUND_END,
    endpoint,
    recv_exact,
)

RUN_PAGES = 256  # one frame carries at most 1 MiB
FREEZE_POLL_S = 0.0002
FREEZE_TIMEOUT_S = 5.0
# PLANTED_BUG_ENV, tests only: "skip-final-pages" (the stop-and-copy sends the header alone) or
# "skip-header" (it leaves the header out), so the checks are seen to catch a lost page or update.


class FreezeTimeout(RuntimeError):
    """The cgroup did not report ``frozen 1`` in time."""


def set_frozen(cgroup: Path, frozen: bool) -> None:
    (cgroup / "cgroup.freeze").write_text("1" if frozen else "0")
    deadline = time.monotonic() + FREEZE_TIMEOUT_S
    want = f"frozen {int(frozen)}"
    while want not in (cgroup / "cgroup.events").read_text().splitlines():
        if time.monotonic() > deadline:
            raise FreezeTimeout(f"{cgroup}: no '{want}' in cgroup.events after {FREEZE_TIMEOUT_S} s")
        time.sleep(FREEZE_POLL_S)


def page_runs(pages: np.ndarray) -> list[tuple[int, int]]:
    """Sorted page indices as (first, count) runs of consecutive pages, each at most RUN_PAGES."""
    runs: list[tuple[int, int]] = []
    if pages.size == 0:
        return runs
    breaks = np.flatnonzero(np.diff(pages) != 1) + 1
    for chunk in np.split(pages, breaks):
        first, count = int(chunk[0]), int(chunk.size)
        runs.extend((start, min(RUN_PAGES, first + count - start)) for start in range(first, first + count, RUN_PAGES))
    return runs


@dataclass
class Source:
    """The frozen-or-running source process seen through ``/proc/PID/mem``."""

    pid: int
    state_addr: int
    map_addr: int
    pages: int
    cgroup: Path

    def __post_init__(self) -> None:
        self.mem = os.open(f"/proc/{self.pid}/mem", os.O_RDWR)

    def marked(self) -> np.ndarray:
        return np.flatnonzero(np.frombuffer(os.pread(self.mem, self.pages, self.map_addr), dtype=np.uint8))

    def page_writes(self) -> int:
        """How many page writes the service has made (the counter after its dirty map)."""
        return int.from_bytes(os.pread(self.mem, 8, self.map_addr + self.pages), "little")

    def clear_map(self) -> None:
        os.pwrite(self.mem, bytes(self.pages), self.map_addr)

    def take_marked(self) -> np.ndarray:
        """The pages marked since the last take, with the map cleared while the process is frozen."""
        set_frozen(self.cgroup, True)
        try:
            marked = self.marked()
            self.clear_map()
        finally:
            set_frozen(self.cgroup, False)
        return marked

    def send(self, sock: socket.socket, pages: np.ndarray) -> None:
        for first, count in page_runs(pages):
            data = os.pread(self.mem, count * PAGE, self.state_addr + first * PAGE)
            sock.sendall(FRAME.pack(PAGES, first, count) + data)

    def payload_digest(self) -> bytes:
        digest = hashlib.blake2b(digest_size=32)
        for first in range(1, self.pages, RUN_PAGES):
            count = min(RUN_PAGES, self.pages - first)
            digest.update(os.pread(self.mem, count * PAGE, self.state_addr + first * PAGE))
        return digest.digest()


@dataclass
class PrecopyReport:
    started_s: float
    round_pages: list[int] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)
    freeze_s: float = 0.0
    """when the stop-and-copy froze the source (monotonic)"""
    frozen_s: float = 0.0
    final_pages: int = 0
    acked_s: float = 0.0
    """when the restore side's acknowledgement arrived"""
    serving_s: float = 0.0
    """when the restore side started serving (its own monotonic clock reading)"""
    source_digest: str = ""
    restored_digest: str = ""
    page_writes: int = 0
    """page writes the service made from the first round to the freeze (its dirty rate actually reached)"""


def stop_and_copy(src: Source, sock: socket.socket, report: PrecopyReport) -> None:
    final = np.union1d(src.marked(), [0])
    planted = os.environ.get(PLANTED_BUG_ENV)
    if planted == "skip-final-pages":
        final = np.array([0])
    elif planted == "skip-header":
        final = final[final != 0]
    report.final_pages = int(final.size)
    src.send(sock, final)
    sock.sendall(FRAME.pack(COMMIT, 0, 0))
    reply = bytearray(1 + 8)
    recv_exact(sock, memoryview(reply))
    report.acked_s = time.monotonic()
    if reply[:1] != ACK:
        raise ConnectionError(f"restore side answered {bytes(reply[:1])!r}, not an acknowledgement")
    (report.serving_s,) = struct.unpack(">d", reply[1:])


def migrate(src: Source, sock: socket.socket, final_mib: float, max_rounds: int, registry: Path,
            new_endpoint: str) -> PrecopyReport:
    report = PrecopyReport(started_s=time.monotonic())
    writes_before = src.page_writes()
    pending = np.arange(src.pages)
    src.take_marked()
    while True:
        began = time.monotonic()
        src.send(sock, pending)
        sock.sendall(FRAME.pack(ROUND_END, 0, 0))
        if sock.recv(1) != ROUND_END:
            raise ConnectionError("the restore side did not acknowledge a round")
        report.round_pages.append(int(pending.size))
        report.round_s.append(time.monotonic() - began)
        if src.marked().size * PAGE <= final_mib * 2**20 or len(report.round_pages) >= max_rounds:
            break
        pending = src.take_marked()
    report.freeze_s = time.monotonic()
    set_frozen(src.cgroup, True)
    report.frozen_s = time.monotonic()
    report.page_writes = src.page_writes() - writes_before
    try:
        stop_and_copy(src, sock, report)
    except BaseException:
        set_frozen(src.cgroup, False)  # not committed: the source carries on, nothing is lost
        raise
    staged = registry.with_suffix(".tmp")
    staged.write_text(new_endpoint)
    staged.replace(registry)
    digest = bytearray(1 + 32)
    recv_exact(sock, memoryview(digest))  # sent once the restored service answered its first request
    report.restored_digest = bytes(digest[1:]).hex() if digest[:1] == DIGEST else "missing"
    report.source_digest = src.payload_digest().hex()
    (src.cgroup / "cgroup.kill").write_text("1")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ready-file", type=Path, required=True, help="the source service's ready file")
    parser.add_argument("--cgroup", type=Path, required=True)
    parser.add_argument("--to", required=True, help="ADDR:PORT of the restore side")
    parser.add_argument("--final-mib", type=float, required=True)
    parser.add_argument("--max-rounds", type=int, required=True)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--new-endpoint", required=True)
    args = parser.parse_args()
    ready = json.loads(args.ready_file.read_text())
    src = Source(ready["pid"], ready["state_addr"], ready["map_addr"], ready["pages"], args.cgroup)
    with socket.create_connection(endpoint(args.to), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else the commit waits for a delayed ACK (~40 ms)
        report = migrate(src, sock, args.final_mib, args.max_rounds, args.registry, args.new_endpoint)
    print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()
