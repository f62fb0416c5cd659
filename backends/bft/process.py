"""One real PBFT replica process: the ``novacron.bft`` core over TCP, with SQLite storage.

Theory of operation
-------------------
The runtime drives ``Replica`` as ``novacron/bft/__init__.py`` prescribes, in the shape of the
Raft managers (``backends.manager.runtime``): one asyncio loop owns the replica; every 10 ms it
ticks it; every frame from a peer or a client is stepped; after each input the ``Ready`` is saved
(one fsynced SQLite transaction, ``SQLiteBftStore``) *before* its messages leave, then one frame
per destination carries them. Frames are the managers' length-prefixed msgpack
(``backends.manager.framing``); outbound peer links are the managers' ``PeerLink`` (reconnect with
backoff, drop when a peer is slow -- PBFT retransmits by itself).

One listening port per replica takes both kinds of connection; the first frame says which:
``{"peer": id}`` (a replica's outbound link: frames of messages follow) or ``{"client": id}``
(frames of requests follow; replies go back on the same connection). A client may also send
``{"status": true}`` and gets ``{"status": {...}}`` (view, executed, digests) -- what the tests read.

Keys: Ed25519 pairs derived from ``--key-seed`` for replicas ``1..n`` and clients
``CLIENT_IDS`` (test keys, reproducible; a deployment would load each replica's private key and
everybody's public keys from files). ``--byzantine KINDS`` makes this replica a liar
(``sim.bft.byzantine.Liar``: the same rewriting of its own traffic as in the simulator).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from random import Random
from typing import Any

from backends.bft.store import SQLiteBftStore
from backends.manager.framing import FrameDecoder, FrameTooLarge, encode_frame
from backends.manager.peers import PeerLink
from novacron.bft.app import KeyValueApp
from novacron.bft.crypto import Ed25519Keyring
from novacron.bft.messages import Signed, from_wire, to_wire
from novacron.bft.replica import BftConfig, Replica
from sim.bft.byzantine import BYZANTINE_KINDS, Liar

log = logging.getLogger(__name__)
CLIENT_IDS = range(100, 116)
READ_CHUNK_BYTES = 1 << 16


class BftReplicaProcess:
    def __init__(self, replica_id: int, peers: dict[int, tuple[str, int]], data_dir: Path, *, key_seed: int,
                 byzantine: frozenset[str] = frozenset(), tick_ms: float = 10.0) -> None:
        self.id = replica_id
        self.peers = peers
        self.tick_s = tick_ms / 1000.0
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = SQLiteBftStore(data_dir / "bft.sqlite3")
        self.keyring = Ed25519Keyring(key_seed, [*peers, *CLIENT_IDS])
        config = BftConfig(replica_id, len(peers))
        self.replica = Replica(config, self.keyring.signer(replica_id), self.keyring, KeyValueApp(),
                               self.store.stored())
        self.liar = (Liar(byzantine, Random(key_seed * 1000 + replica_id), self.keyring.signer(replica_id),
                          silent_to=frozenset(), lie_share=1.0, view_change_delay_s=0.5) if byzantine else None)
        host = peers[replica_id][0]
        self.links = {pid: PeerLink(replica_id, pid, h, p, local_host=host)
                      for pid, (h, p) in peers.items() if pid != replica_id}
        self.clients: dict[int, asyncio.StreamWriter] = {}
        self.digests: dict[int, str] = {}
        self._started_s = time.monotonic()
        self._stop = asyncio.Event()

    # -- the Stage a liar acts on -------------------------------------------------------------------

    @property
    def n(self) -> int:
        return len(self.peers)

    @property
    def now_s(self) -> float:
        return time.monotonic() - self._started_s

    def deliver_later(self, at_s: float, dst: int, message: Signed) -> None:
        asyncio.get_running_loop().call_later(max(0.0, at_s - self.now_s), self._send, [(dst, message)])

    # -- the loop ---------------------------------------------------------------------------------

    async def serve(self) -> None:
        host, port = self.peers[self.id]
        server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        for link in self.links.values():
            link.start()
        self._drive()
        ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        print(f"bft replica {self.id} listening on {host}:{port}", flush=True)
        try:
            await self._stop.wait()
        finally:
            ticker.cancel()
            server.close()
            for link in self.links.values():
                await link.close()
            self.store.close()

    def stop(self) -> None:
        self._stop.set()

    async def _tick_forever(self) -> None:
        next_s = time.monotonic()
        while True:
            next_s += self.tick_s
            await asyncio.sleep(max(0.0, next_s - time.monotonic()))
            next_s = max(next_s, time.monotonic() - self.tick_s)  # a stalled loop does not burst ticks
            self.replica.tick()
            self._drive()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        client: int | None = None
        try:
            while chunk := await reader.read(READ_CHUNK_BYTES):
                for frame in decoder.feed(chunk):
                    if isinstance(frame, dict):
                        client = self._hello(frame, writer, client)
                    elif isinstance(frame, list):
                        self._receive(frame)
        except (OSError, FrameTooLarge, ValueError) as exc:
            log.debug("replica %d: connection dropped: %s", self.id, exc)
        finally:
            if client is not None and self.clients.get(client) is writer:
                del self.clients[client]
            writer.close()

    def _hello(self, frame: dict[str, Any], writer: asyncio.StreamWriter, client: int | None) -> int | None:
        if "client" in frame:
            client = int(frame["client"])
            self.clients[client] = writer
        elif "status" in frame:
            replica = self.replica
            status = {"id": self.id, "view": replica.view, "status": replica.status, "executed": replica.executed,
                      "stable": replica.stable.seq, "rejected": replica.rejected,
                      "digests": {str(seq): digest for seq, digest in self.digests.items()}}
            writer.write(encode_frame({"status": status}))
        return client

    def _receive(self, frame: list[Any]) -> None:
        for wire in frame:
            try:
                message = from_wire(wire)
            except ValueError:
                self.replica.rejected += 1
                continue
            if not isinstance(message, Signed):
                self.replica.rejected += 1
                continue
            if self.liar is not None:
                self.liar.incoming(self, self.replica, message)
            self.replica.step(message)
        self._drive()

    def _drive(self) -> None:
        replica = self.replica
        while replica.has_ready():
            ready = replica.ready()
            self.store.save(ready)  # durable before anything of this Ready is sent
            messages = ready.messages
            if self.liar is not None:
                messages = self.liar.outgoing(self, replica, messages)
            self._send(messages)
            for executed in ready.executed:
                self.digests[executed.seq] = executed.digest.hex()
            replica.advance(ready)

    def _send(self, messages: list[tuple[int, Signed]]) -> None:
        by_dst: dict[int, list[Any]] = {}
        for dst, message in messages:
            by_dst.setdefault(dst, []).append(to_wire(message))
        for dst, wires in by_dst.items():
            frame = encode_frame(wires)
            if dst in self.links:
                self.links[dst].send(frame)
            elif (writer := self.clients.get(dst)) is not None and not writer.is_closing():
                writer.write(frame)


def parse_peers(text: str) -> dict[int, tuple[str, int]]:
    """``1=127.0.0.1:7001,2=...`` -> {1: ("127.0.0.1", 7001), ...}; a one-line ``ValueError`` otherwise."""
    peers: dict[int, tuple[str, int]] = {}
    for item in text.split(","):
        try:
            rid, address = item.split("=")
            host, port = address.rsplit(":", 1)
            peers[int(rid)] = (host, int(port))
        except ValueError:
            raise ValueError(f"--peers item {item!r}: expected ID=HOST:PORT") from None
    if not 4 <= len(peers) <= 7 or sorted(peers) != list(range(1, len(peers) + 1)):
        raise ValueError(f"--peers {sorted(peers)}: allowed: ids 1..n with n from 4 to 7")
    return peers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.bft.process", description=__doc__.split("\n")[0])
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--peers", required=True, help="1=127.0.0.1:7001,2=127.0.0.1:7002,... (4 to 7 replicas)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--key-seed", type=int, default=0, help="derive everybody's Ed25519 test keys from this")
    parser.add_argument("--byzantine", default="", help=f"comma-separated lies: {', '.join(BYZANTINE_KINDS)}")
    args = parser.parse_args(argv)
    try:
        peers = parse_peers(args.peers)
        kinds = frozenset(k for k in args.byzantine.split(",") if k)
        if args.id not in peers:
            raise ValueError(f"--id {args.id}: allowed: {', '.join(map(str, sorted(peers)))}")
        unknown = kinds - set(BYZANTINE_KINDS)
        if unknown:
            raise ValueError(f"--byzantine {','.join(sorted(unknown))}: allowed: {', '.join(BYZANTINE_KINDS)}")
    except ValueError as exc:
        print(f"bft replica: error: {exc}", file=sys.stderr)
        return 2
    process = BftReplicaProcess(args.id, peers, args.data_dir, key_seed=args.key_seed, byzantine=kinds)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, process.stop)
        await process.serve()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
