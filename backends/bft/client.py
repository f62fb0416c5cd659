"""An asyncio PBFT client for the real replicas: multicast, resend, accept at f + 1 matching replies.

Theory of operation
-------------------
One connection per replica (first frame ``{"client": id}``), kept open and re-dialled when a replica
restarts. ``call(operation)`` signs a request (``BftClient``), sends it to every replica and resends
it every ``retry_s`` until ``f + 1`` replicas sent the same signed result; a Byzantine replica's
reply, or one forged in another's name, cannot make up a quorum on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from backends.bft.process import CLIENT_IDS, READ_CHUNK_BYTES
from backends.manager.framing import FrameDecoder, encode_frame
from novacron.bft.client import BftClient
from novacron.bft.crypto import Ed25519Keyring
from novacron.bft.messages import Signed, from_wire, to_wire

CONNECT_TIMEOUT_S = 0.5


class RemoteBftClient:
    def __init__(self, peers: dict[int, tuple[str, int]], *, key_seed: int, client_id: int = CLIENT_IDS[0]) -> None:
        self.peers = peers
        self.id = client_id
        keyring = Ed25519Keyring(key_seed, [*peers, *CLIENT_IDS])
        n = len(peers)
        self.client = BftClient(client_id, keyring.signer(client_id), keyring, (n - 1) // 3, n)
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._readers: dict[int, asyncio.Task[None]] = {}
        self._result: asyncio.Future[bytes] | None = None

    async def _open(self, replica: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A new connection to ``replica``; None when it does not accept one within ``CONNECT_TIMEOUT_S``."""
        host, port = self.peers[replica]
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            return None

    async def _connect(self, replica: int) -> asyncio.StreamWriter | None:
        known = self._writers.get(replica)
        if known is not None and not known.is_closing():
            return known
        opened = await self._open(replica)
        if opened is None:
            return None
        reader, writer = opened
        writer.write(encode_frame({"client": self.id}))
        self._writers[replica] = writer
        self._readers[replica] = asyncio.get_running_loop().create_task(self._read(reader))
        return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder()
        with contextlib.suppress(OSError, ValueError):
            while chunk := await reader.read(READ_CHUNK_BYTES):
                for frame in decoder.feed(chunk):
                    for wire in frame if isinstance(frame, list) else ():
                        message = from_wire(wire)
                        if isinstance(message, Signed):
                            self._on_reply(message)

    def _on_reply(self, message: Signed) -> None:
        result = self.client.on_reply(message)
        if result is not None and self._result is not None and not self._result.done():
            self._result.set_result(result)

    async def _multicast(self, request: Signed) -> None:
        frame = encode_frame([to_wire(request)])
        for replica in self.peers:
            writer = await self._connect(replica)
            if writer is not None:
                writer.write(frame)

    async def call(self, operation: bytes, *, timeout_s: float = 20.0, retry_s: float = 1.0) -> bytes:
        request = self.client.request(operation)
        self._result = asyncio.get_running_loop().create_future()
        deadline_s = asyncio.get_running_loop().time() + timeout_s
        while True:
            await self._multicast(request)
            left_s = deadline_s - asyncio.get_running_loop().time()
            if left_s <= 0:
                raise TimeoutError(f"request {self.client.timestamp} ({operation[:40]!r}) got no f + 1 "
                                   f"matching replies in {timeout_s:g} s")
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(self._result), min(retry_s, left_s))

    async def status(self, replica: int) -> dict[str, Any] | None:
        """The replica's view, executed sequence number and executed digests (None if unreachable)."""
        opened = await self._open(replica)
        if opened is None:
            return None
        reader, writer = opened
        try:
            writer.write(encode_frame({"status": True}))
            decoder = FrameDecoder()
            async with asyncio.timeout(2.0):
                while chunk := await reader.read(READ_CHUNK_BYTES):
                    for frame in decoder.feed(chunk):
                        if isinstance(frame, dict) and "status" in frame:
                            status: dict[str, Any] = frame["status"]
                            return status
        except (OSError, TimeoutError):
            return None
        finally:
            writer.close()
        return None

    async def close(self) -> None:
        for task in self._readers.values():
            task.cancel()
        for writer in self._writers.values():
            writer.close()
