"""Outbound links from one manager to the others: reconnect with backoff, never block the loop.

Theory of operation
-------------------
Each manager dials every peer and uses that connection only to send; it receives on the
connections its peers dialled (the first frame of each says who is calling). Keeping the two
directions apart means no connection is ever shared between two writers and there is no
"who dials whom" race.

``send`` is called from the Ready loop and must never wait: it hands bytes to the asyncio
transport, which buffers them in user space if the kernel's socket buffer is full. If a peer is
slow, down or partitioned, that buffer would grow without bound, so above ``max_buffered_bytes``
the frame is dropped -- Raft treats the network as lossy and retransmits (heartbeats, probes), so
dropping is safe and keeps the leader's memory bounded. A background task per peer (re)connects
with exponential backoff (``backoff_min_s`` doubling to ``backoff_max_s``) and a connect timeout,
so a dead peer costs one failed connect every second at most. A connection that is accepted and
closed within ``backoff_max_s`` counts as a failed attempt too (a proxy in front of a dead peer
accepts and hangs up at once), so it cannot turn the loop into a busy reconnect loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from backends.manager.framing import encode_frame

log = logging.getLogger(__name__)


class PeerLink:
    def __init__(self, self_id: int, peer_id: int, host: str, port: int, *, local_host: str | None = None,
                 connect_timeout_s: float = 1.0,
                 backoff_min_s: float = 0.02, backoff_max_s: float = 1.0,
                 max_buffered_bytes: int = 32 * 1024 * 1024) -> None:
        self.self_id, self.peer_id, self.host, self.port = self_id, peer_id, host, port
        self.local_addr = (local_host, 0) if local_host else None
        """Dial from this manager's own address, so a firewall can tell its traffic apart (tests partition
        managers on loopback by address with nftables)."""
        self.connect_timeout_s = connect_timeout_s
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.max_buffered_bytes = max_buffered_bytes
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.connects = 0
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._maintain(), name=f"peer-{self.peer_id}")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_connection()

    def connected(self) -> bool:
        return self._writer is not None

    def send(self, frame: bytes) -> bool:
        """Queue one frame; ``False`` if it was dropped (not connected, or the peer is too slow)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            self.frames_dropped += 1
            return False
        if writer.transport.get_write_buffer_size() > self.max_buffered_bytes:
            self.frames_dropped += 1
            return False
        writer.write(frame)
        self.frames_sent += 1
        return True

    async def _maintain(self) -> None:
        backoff_s = self.backoff_min_s
        while not self._closed:  # the flag too: Python 3.11's wait_for can swallow a cancellation
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=self.local_addr)
            except (TimeoutError, OSError):
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.backoff_max_s)
                continue
            self.connects += 1
            connected_at = time.monotonic()
            writer.write(encode_frame({"peer": self.self_id}))
            self._writer = writer
            # The peer never writes on this connection: EOF or an error means it is gone.
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await reader.read()
            self._drop_connection()
            if time.monotonic() - connected_at >= self.backoff_max_s:
                backoff_s = self.backoff_min_s
            else:
                # Accepted, then closed at once (a proxy whose upstream is down, a peer shutting
                # down): without a pause this loop would reconnect as fast as the CPU allows.
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.backoff_max_s)

    def _drop_connection(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
