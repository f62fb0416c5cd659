"""Peer links: they reconnect with backoff and never let a slow peer block or bloat the sender."""

from __future__ import annotations

import asyncio
import time

from backends.manager.framing import FrameDecoder, encode_frame
from backends.manager.peers import PeerLink
from backends.ports import free_ports


async def _wait_until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def test_a_link_connects_once_the_peer_appears_and_reconnects_after_it_restarts() -> None:
    async def scenario() -> None:
        (port,) = free_ports(1)
        received: list[object] = []
        writers: list[asyncio.StreamWriter] = []

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            decoder = FrameDecoder()
            while chunk := await reader.read(65536):
                received.extend(decoder.feed(chunk))

        link = PeerLink(1, 2, "127.0.0.1", port, backoff_min_s=0.01, backoff_max_s=0.05)
        link.start()
        try:
            await asyncio.sleep(0.1)
            assert not link.connected() and not link.send(encode_frame(["lost"]))
            server = await asyncio.start_server(peer, "127.0.0.1", port)
            await _wait_until(link.connected)
            assert link.send(encode_frame(["hello"]))
            await _wait_until(lambda: ["hello"] in received)
            assert received[0] == {"peer": 1}, "the first frame names the sender"
            server.close()
            for writer in writers:  # the peer "crashes": its end of the connection goes away
                writer.close()
            await server.wait_closed()
            await _wait_until(lambda: not link.connected())
            server = await asyncio.start_server(peer, "127.0.0.1", port)
            await _wait_until(lambda: link.connects == 2)
            server.close()
            for writer in writers:
                writer.close()
            await server.wait_closed()
        finally:
            await link.close()
        assert link.frames_dropped >= 1

    asyncio.run(scenario())


def test_a_peer_that_stops_reading_costs_dropped_frames_not_a_blocked_loop() -> None:
    async def scenario() -> None:
        (port,) = free_ports(1)
        stalled: list[asyncio.StreamWriter] = []
        release = asyncio.Event()

        async def stalled_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stalled.append(writer)
            await release.wait()  # never reads: the sender's buffers fill up
            writer.close()

        server = await asyncio.start_server(stalled_peer, "127.0.0.1", port)
        link = PeerLink(1, 2, "127.0.0.1", port, max_buffered_bytes=1 << 20)
        link.start()
        try:
            await _wait_until(link.connected)
            frame = encode_frame(b"x" * 100_000)
            # 40 MB offered to a peer that reads nothing: send() returns at once (it is not a
            # coroutine), and what it keeps for the peer stays bounded.
            results = [link.send(frame) for _ in range(400)]
            assert results[0] and not results[-1]
            assert link.frames_dropped > 0 and link.frames_sent + link.frames_dropped == 400
            assert link._writer is not None
            assert link._writer.transport.get_write_buffer_size() <= (1 << 20) + len(frame)
        finally:
            release.set()
            await link.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


def test_a_peer_that_accepts_and_hangs_up_at_once_is_retried_with_backoff() -> None:
    """A link stage (or any proxy) in front of a dead peer accepts, then closes: that must back off
    like a refused connect, not reconnect as fast as the loop turns (it did: 233 times in 0.5 s)."""
    async def scenario() -> int:
        (port,) = free_ports(1)

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", port)
        link = PeerLink(1, 2, "127.0.0.1", port, backoff_min_s=0.02, backoff_max_s=0.2)
        link.start()
        try:
            await asyncio.sleep(0.5)
            return link.connects
        finally:
            await link.close()
            server.close()
            await server.wait_closed()

    connects = asyncio.run(scenario())
    # 20 + 40 + 80 + 160 + 200 ms ... of pauses: about 5 attempts in 0.5 s.
    assert 1 <= connects <= 8, f"{connects} connects in 0.5 s"
