"""A userspace network stage between managers: per-frame delay, jitter, reordering, duplication, loss.

Theory of operation
-------------------
This kernel has no ``tc netem`` (see LAB.md), so what netem would do to packets this stage does
to the managers' frames. One stage process runs inside each manager's network namespace and
owns that manager's outbound links: the manager is told (``--peers``) that peer ``j`` lives at
``127.0.0.1:<port of j>`` in its own namespace, the stage accepts that connection there and
dials peer ``j``'s real address across the veth/bridge. Every frame after the first (the
"who is calling" handshake, passed at once and never duplicated) is then:

- dropped with probability ``drop``,
- held for ``delay_ms`` plus a uniform jitter of up to ``±jitter_ms`` (never negative; or, with
  ``gamma_shape``, the simulation's shifted-gamma latency of mean ``delay_ms``); frames
  are released by their own timers, so a frame with a shorter draw overtakes an earlier one --
  reordering grows with the jitter,
- with probability ``duplicate`` sent a second time after an independent draw.

It works on whole frames (the managers' length-prefixed msgpack messages), not on TCP
segments: reordering or duplicating bytes inside a TCP stream would only corrupt it, while Raft
is specified for a network that loses, delays, duplicates and reorders *messages* (Raft paper,
section 5.1). Partitions and packet loss below TCP are nftables' job (``netns.py``); a frame
lost here models a message lost to a connection reset. The "weather" is read from a JSON file
(``{"delay_ms": .., "jitter_ms": .., "duplicate": .., "drop": ..}``, optionally per destination id
under ``"links"``) whenever its modification time changes, so a nemesis can change it during a
run. A destination that stops accepting frames (a partition) costs at most
``MAX_BUFFERED_BYTES`` per link; beyond that frames are dropped, as the managers' own links do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import struct
import time
from dataclasses import dataclass, fields
from pathlib import Path

HEADER = struct.Struct(">I")
MAX_BUFFERED_BYTES = 8 * 1024 * 1024
WEATHER_POLL_S = 0.01
"""How soon a changed weather file applies (a timed partition's start and heal are this precise)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Weather:
    """What the stage does to each frame on one link (or on every link, without ``links``)."""

    delay_ms: float = 0.0
    """Mean one-way delay added to a frame."""
    jitter_ms: float = 0.0
    duplicate: float = 0.0
    """Probability that a frame is delivered twice."""
    drop: float = 0.0
    """Probability that a frame is dropped."""
    gamma_shape: float = 0.0
    """0: the delay is uniform in ``delay_ms ± jitter_ms``. > 0: at least ``delay_ms - jitter_ms``
    plus a gamma-distributed tail of this shape and mean ``jitter_ms`` -- the latency law of the
    simulation's ``sim/network.py`` (mean ``delay_ms``), for timing comparisons."""

    def draw_delay_s(self, rng: random.Random) -> float:
        if self.gamma_shape > 0 and self.jitter_ms > 0:
            tail_ms = rng.gammavariate(self.gamma_shape, self.jitter_ms / self.gamma_shape)
            return max(0.0, self.delay_ms - self.jitter_ms + tail_ms) / 1000
        return max(0.0, self.delay_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000

    @property
    def calm(self) -> bool:
        return self == Weather()


def parse_weather(doc: dict[str, object]) -> Weather:
    known = {f.name for f in fields(Weather)}
    unknown = set(doc) - known - {"links"}
    if unknown:
        raise ValueError(f"weather: unknown fields {sorted(unknown)}; allowed: {sorted(known)}")
    return Weather(**{k: float(v) for k, v in doc.items() if k in known})  # type: ignore[arg-type]


def applied_path(weather: Path) -> Path:
    """Where a stage writes the ``time.monotonic()`` at which it applied ``weather``'s latest version."""
    return weather.with_name(weather.name + ".applied")


class WeatherFile:
    """The weather per destination id, re-read when the file changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime_ns = -1
        self.default = Weather()
        self.links: dict[int, Weather] = {}

    def for_link(self, destination: int) -> Weather:
        return self.links.get(destination, self.default)

    def reload_if_changed(self) -> None:
        if self.path is None:
            return
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime_ns = 0
        if mtime_ns == self._mtime_ns:
            return
        self._mtime_ns = mtime_ns
        doc = json.loads(self.path.read_text()) if mtime_ns else {}
        self.default = parse_weather(doc)
        links = doc.get("links", {})
        self.links = {int(k): parse_weather({**doc, "links": {}, **v}) for k, v in links.items()}
        # When this stage began to apply it (the system-wide monotonic clock), for timed faults.
        applied_path(self.path).write_text(f"{time.monotonic()!r}\n")


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete frame (header included) at the front of ``buffer``."""
    frames, offset = [], 0
    while len(buffer) - offset >= HEADER.size:
        (length,) = HEADER.unpack_from(buffer, offset)
        end = offset + HEADER.size + length
        if len(buffer) < end:
            break
        frames.append(bytes(buffer[offset:end]))
        offset = end
    del buffer[:offset]
    return frames


class LinkStage:
    def __init__(self, routes: dict[int, tuple[int, str, int]], weather: WeatherFile, seed: int) -> None:
        """``routes``: destination id -> (local listen port, destination host, destination port)."""
        self.routes = routes
        self.weather = weather
        self.rng = random.Random(seed)
        self.frames_delayed = 0

    async def serve(self) -> None:
        servers = [await asyncio.start_server(self._make_handler(dest), "127.0.0.1", port, reuse_address=True)
                   for dest, (port, _, _) in self.routes.items()]
        print(f"link stage: {len(servers)} links ready", flush=True)
        while True:
            self.weather.reload_if_changed()
            await asyncio.sleep(WEATHER_POLL_S)

    def _make_handler(self, destination: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(destination, reader, writer)
        return handle

    async def _relay(self, destination: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, host, port = self.routes[destination]
        try:
            async with asyncio.timeout(1.0):
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            writer.close()
            return
        loop = asyncio.get_running_loop()
        back = loop.create_task(self._pipe_back(up_reader, writer))
        buffer = bytearray()
        handshake_sent = False
        last_release = loop.time()
        try:
            while chunk := await reader.read(1 << 18):
                buffer += chunk
                for frame in split_frames(buffer):
                    if not handshake_sent:
                        up_writer.write(frame)
                        handshake_sent = True
                    else:
                        last_release = max(last_release, self._forward(destination, frame, up_writer))
                if up_writer.is_closing():
                    break
        except ConnectionError:
            pass
        finally:
            back.cancel()
            writer.close()
            # Frames already "on the wire" still arrive after their sender died, as packets in a
            # netem queue do: close the upstream only after the last one has been released.
            loop.call_at(last_release + 0.001, up_writer.close)

    def _forward(self, destination: int, frame: bytes, up: asyncio.StreamWriter) -> float:
        """Send ``frame`` on (now, later or never); returns the loop time it is released at."""
        weather = self.weather.for_link(destination)
        loop = asyncio.get_running_loop()
        if weather.calm:
            self._write(up, frame)
            return loop.time()
        if self.rng.random() < weather.drop:
            return loop.time()
        copies = 2 if self.rng.random() < weather.duplicate else 1
        release = loop.time()
        for _ in range(copies):
            delay_s = weather.draw_delay_s(self.rng)
            loop.call_later(delay_s, self._write, up, frame)
            release = max(release, loop.time() + delay_s)
        self.frames_delayed += 1
        return release

    @staticmethod
    def _write(up: asyncio.StreamWriter, frame: bytes) -> None:
        if up.is_closing() or up.transport.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            return
        up.write(frame)

    @staticmethod
    async def _pipe_back(up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await up_reader.read(1 << 16):
                writer.write(chunk)
        writer.close()


def parse_route(text: str) -> tuple[int, tuple[int, str, int]]:
    """``DEST=LOCALPORT:HOST:PORT`` -> (dest, (local port, host, port))."""
    dest, sep, rest = text.partition("=")
    parts = rest.split(":")
    if not sep or len(parts) != 3 or not dest.isdigit() or not parts[0].isdigit() or not parts[2].isdigit():
        raise ValueError(f"--route {text!r}: expected DEST=LOCALPORT:HOST:PORT, e.g. 2=7102:10.251.73.12:7000")
    return int(dest), (int(parts[0]), parts[1], int(parts[2]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.manager.linkstage",
                                     description="Per-frame delay/jitter/duplication/loss between managers "
                                                 "(the userspace stand-in for tc netem).")
    parser.add_argument("--route", action="append", default=[], help="DEST=LOCALPORT:HOST:PORT (repeat)")
    parser.add_argument("--weather", type=Path, default=None, help="JSON weather file, re-read when it changes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        routes = dict(parse_route(r) for r in args.route)
    except ValueError as exc:
        parser.exit(2, f"{exc}\n")
    stage = LinkStage(routes, WeatherFile(args.weather), args.seed)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(stage.serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
