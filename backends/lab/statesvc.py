"""A small real stateful service that can be migrated live at the application level.

Theory of operation
-------------------
All the service's state lives in one anonymous memory arena of ``1 + pages`` pages of 4 KiB:

- page 0, the header: a magic, the counter of applied requests, and one slot per client holding
  its last request id and the reply it got (so a request retried after a migration is answered
  from the slot, not applied twice -- exactly-once, as a Raft client session does it);
- pages ``1..pages``: the payload (``state_mib`` MiB), of which the first ``wws_mib`` are the
  writable working set a background writer dirties at ``dirty_rate_mib_s`` (random pages).

Beside the arena, outside the state, a dirty map holds one byte per arena page. Every write to
the arena is followed by setting its page's byte (write first, then mark: a writer frozen
between the two leaves the page unmarked but the change unseen -- its reply is sent only after
the mark -- so a dump that misses it loses nothing a client saw). This is the application-level
stand-in for the kernel's soft-dirty bits that ``criu pre-dump`` reads: this kernel has no
``CONFIG_MEM_SOFT_DIRTY`` (``/proc/PID/pagemap`` bit 55 never sets) and Debian's CRIU 3.17 fails
``criu check`` here. ``backends.lab.precopy`` reads and clears the map and reads the pages from
outside, through ``/proc/PID/mem``, with the process frozen by its cgroup.

Modes: fresh (fill the payload, serve at once) or ``--incoming``, the restore side (as QEMU's
``-incoming``): receive page runs into the arena, acknowledging each round's end, until a
commit; then serve, reply ``A`` with the monotonic time serving started; once the first reply
went out (or after ``DIGEST_DELAY_S``) hash the payload with the writer held back, send ``H``
with the digest, then start the writer. Requests are lines ``INC <client> <request>``; replies
are ``<request> <value> <name>``. The ready file (JSON) gives the pid and the arena's addresses.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import itertools
import json
import mmap
import os
import random
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE = 4096
MAGIC = b"NCSTATE1"
HEADER = struct.Struct("<8sQ")
SLOT = struct.Struct("<QQQ")  # client id, last request id, last reply value
SLOTS = (PAGE - HEADER.size) // SLOT.size
WRITES = struct.Struct("<Q")
FRAME = struct.Struct(">cQI")  # kind, first page, page count (then count pages for kind P)
PAGES, ROUND_END, COMMIT, ACK, DIGEST = b"P", b"R", b"C", b"A", b"H"
PLANTED_BUG_ENV = "NOVACRON_PRECOPY_PLANTED_BUG"
"""Tests only (shared with ``precopy``): ``no-dedup`` makes a repeated request apply again."""
WRITER_TICK_S = 0.002  # short, so the dirtying is close to the steady rate the model assumes
DIGEST_DELAY_S = 5.0


def buffer_address(buffer: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def recv_exact(sock: socket.socket, view: memoryview) -> None:
    while view:
        got = sock.recv_into(view)
        if not got:
            raise ConnectionError("peer closed mid-frame")
        view = view[got:]


@dataclass
class Arena:
    """The state pages and their dirty map; ``lock`` orders request handling."""

    pages: int
    wws_pages: int
    dedup: bool = True
    """False only for a planted bug: a repeated request is applied again"""

    def __post_init__(self) -> None:
        self.state = mmap.mmap(-1, (1 + self.pages) * PAGE)
        self.state.madvise(mmap.MADV_NOHUGEPAGE)  # a write dirties 4 KiB, not a 2 MiB huge page
        self.dirty = mmap.mmap(-1, 1 + self.pages + WRITES.size)
        """one byte per page, then the count of page writes so far (the dirty rate actually reached)"""
        self.lock = threading.Lock()

    def fill(self) -> None:
        """A fresh service: every payload page present and distinct; a zero counter."""
        for page in range(1, 1 + self.pages):
            self.state[page * PAGE:page * PAGE + 8] = page.to_bytes(8, "little")
        self.state[:HEADER.size] = HEADER.pack(MAGIC, 0)

    def apply(self, client: int, request: int) -> int | None:
        """The reply value of ``client``'s ``request``; None if it skips ahead of its last one."""
        with self.lock:
            _, counter = HEADER.unpack_from(self.state, 0)
            free = None
            for index in range(SLOTS):
                offset = HEADER.size + index * SLOT.size
                owner, last, value = SLOT.unpack_from(self.state, offset)
                if owner == client:
                    if request == last and self.dedup:
                        return int(value)
                    if request == last:  # the planted bug: applied again
                        last -= 1
                    if request != last + 1:
                        return None
                    free = offset
                    break
                if owner == 0 and free is None:
                    free = offset
            if free is None:
                return None
            counter += 1
            HEADER.pack_into(self.state, 0, MAGIC, counter)
            SLOT.pack_into(self.state, free, client, request, counter)
            self.dirty[0] = 1
            return int(counter)

    def write_some(self, rng: random.Random, count: int, generation: int) -> None:
        for _ in range(count):
            page = 1 + rng.randrange(self.wws_pages)
            self.state[page * PAGE:page * PAGE + 8] = generation.to_bytes(8, "little")
            self.dirty[page] = 1
        (written,) = WRITES.unpack_from(self.dirty, 1 + self.pages)
        WRITES.pack_into(self.dirty, 1 + self.pages, written + count)

    def payload_digest(self) -> bytes:
        return hashlib.blake2b(memoryview(self.state)[PAGE:], digest_size=32).digest()

    def receive(self, conn: socket.socket) -> None:
        """Apply page runs from the migration stream until its commit."""
        head = bytearray(FRAME.size)
        view = memoryview(self.state)
        while True:
            recv_exact(conn, memoryview(head))
            kind, first, count = FRAME.unpack(head)
            if kind == COMMIT:
                break
            if kind == ROUND_END:  # the sender times a round by its arrival, not by its socket buffer
                conn.sendall(ROUND_END)
                continue
            if kind != PAGES or first + count > 1 + self.pages:
                raise ValueError(f"bad migration frame {kind!r} {first}+{count}")
            recv_exact(conn, view[first * PAGE:(first + count) * PAGE])
        magic, _ = HEADER.unpack_from(self.state, 0)
        if magic != MAGIC:
            raise ValueError("restored state has no header")


def writer(arena: Arena, rate_mib_s: float, go: threading.Event, seed: int,
           stop: threading.Event | None = None) -> None:
    """Dirty ``rate_mib_s`` of random working-set pages per second once ``go`` is set, until ``stop``."""
    rng = random.Random(seed)
    owed = 0.0
    generation = 0
    go.wait()
    last_s = time.monotonic()
    while stop is None or not stop.is_set():
        time.sleep(WRITER_TICK_S)
        now_s = time.monotonic()
        owed += rate_mib_s * 256 * (now_s - last_s)  # by the clock: a late wake-up must not slow the rate
        last_s = now_s
        generation += 1
        arena.write_some(rng, int(owed), generation)
        owed -= int(owed)


def serve(arena: Arena, name: str, listen: tuple[str, int], served: threading.Event, hold_after: int = 0) -> None:
    """Answer requests on ``listen``; ``served`` is set once the first reply went out. With
    ``hold_after`` > 0, requests after that many replies are applied but never answered (a reply
    lost with the host: the client must retry it after the move, and get the same value)."""
    replies = itertools.count(1)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                parts = line.split()
                value = arena.apply(int(parts[1]), int(parts[2])) if len(parts) == 3 else None
                if hold_after and next(replies) > hold_after:
                    threading.Event().wait()
                answer = f"{parts[2].decode()} {value} {name}\n" if value is not None else "ERR\n"
                self.wfile.write(answer.encode())
                served.set()

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(listen, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--state-mib", type=float, required=True)
    parser.add_argument("--wws-mib", type=float, required=True)
    parser.add_argument("--dirty-rate-mib-s", type=float, required=True)
    parser.add_argument("--listen", required=True, help="ADDR:PORT the clients use")
    parser.add_argument("--incoming", help="ADDR:PORT to receive the state on (restore side)")
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hold-replies-after", type=int, default=0, help="apply but never answer after N replies")
    args = parser.parse_args()
    pages = max(1, round(args.state_mib * 256))
    arena = Arena(pages, max(1, min(pages, round(args.wws_mib * 256))),
                  dedup=os.environ.get(PLANTED_BUG_ENV) != "no-dedup")
    go = threading.Event()
    threading.Thread(target=writer, args=(arena, args.dirty_rate_mib_s, go, args.seed), daemon=True).start()
    ready = {"pid": os.getpid(), "state_addr": buffer_address(arena.state),
             "map_addr": buffer_address(arena.dirty), "pages": 1 + pages}
    if args.incoming is None:
        arena.fill()
        serve(arena, args.name, endpoint(args.listen), threading.Event(), args.hold_replies_after)
        go.set()
        args.ready_file.write_text(json.dumps(ready))
        threading.Event().wait()
    with socket.create_server(endpoint(args.incoming)) as listener:
        args.ready_file.write_text(json.dumps(ready))
        conn, _ = listener.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        arena.receive(conn)
        served = threading.Event()
        serve(arena, args.name, endpoint(args.listen), served)
        conn.sendall(ACK + struct.pack(">d", time.monotonic()))
        served.wait(DIGEST_DELAY_S)  # verify after the switch, so the check costs no downtime
        conn.sendall(DIGEST + arena.payload_digest())
        go.set()
        with contextlib.suppress(OSError):
            conn.recv(1)
    threading.Event().wait()


if __name__ == "__main__":
    main()
