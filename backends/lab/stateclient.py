"""A closed-loop client of ``statesvc`` that follows the service to its new address.

Theory of operation
-------------------
One request at a time, ``INC <client> <n>`` for n = 1, 2, ..., one every ``interval_ms``. The
service's endpoint is read from a registry file (the stand-in for a service registry or DNS
that the migration updates). A reply not back within ``poll_ms`` makes the client re-read the
registry: a new endpoint, or a broken connection, makes it reconnect there (retrying every
``poll_ms``) and resend the same request -- the service answers a repeated request from its
client slot, so a retry is never applied twice. Every reply is logged as
``<monotonic s> <request> <value> <server name> <times sent>``; the checker (``container_rig``) reads the log:
requests consecutive, value equal to the request number (one client, a counter from 0), so a
lost, repeated or reordered reply, or a state that did not survive the move, shows.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import socket
import time
from pathlib import Path

from backends.lab.statesvc import endpoint


class Follower:
    def __init__(self, registry: Path, poll_s: float) -> None:
        self.registry = registry
        self.poll_s = poll_s
        self.address = ""
        self.sock: socket.socket | None = None
        self.pending = b""
        self.attempts = 0
        """how many times the last request was sent (more than once: retried after a move or a break)"""

    def connect(self) -> socket.socket:
        while True:
            self.address = self.registry.read_text().strip()
            try:
                sock = socket.create_connection(endpoint(self.address), timeout=self.poll_s)
            except OSError:
                time.sleep(self.poll_s)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

    def call(self, line: bytes) -> bytes:
        """The reply line to ``line``, however many reconnections it takes."""
        unsent = True
        self.attempts = 0
        while True:
            if self.sock is None:
                self.sock = self.connect()
                self.pending = b""
                unsent = True
            if unsent:
                try:
                    self.sock.sendall(line)
                except OSError:
                    self.sock.close()
                    self.sock = None
                    continue
                unsent = False
                self.attempts += 1
            reply = self.read_line()
            if reply:
                return reply
            moved = self.registry.read_text().strip() != self.address
            if reply is None or moved:
                self.sock.close()
                self.sock = None

    def read_line(self) -> bytes | None:
        """A whole reply line, b"" when none came within the poll, None when the connection broke."""
        assert self.sock is not None
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.sock], [], [], self.poll_s)
            if not ready:
                return b""
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                return None
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--client", type=int, default=1)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    args = parser.parse_args()
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    follower = Follower(args.registry, args.poll_ms / 1000)
    with args.log.open("w", buffering=1) as log:
        request = 0
        while not stopping:
            request += 1
            reply = follower.call(f"INC {args.client} {request}\n".encode())
            log.write(f"{time.monotonic():.6f} {reply.decode()} {follower.attempts}\n")
            time.sleep(args.interval_ms / 1000)
    with contextlib.suppress(OSError):
        if follower.sock is not None:
            follower.sock.close()


if __name__ == "__main__":
    main()
