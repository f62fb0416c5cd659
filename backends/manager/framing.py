"""Length-prefixed msgpack frames: how managers talk to each other and to their clients.

Theory of operation
-------------------
TCP is a byte stream, so every message travels as a frame: a 4-byte big-endian payload length
followed by that many bytes of msgpack. The receiver feeds whatever ``read()`` returned into a
``FrameDecoder``; it keeps the incomplete tail for the next read, so a frame split across reads
(or many frames in one read) decode the same. A length above ``max_frame_bytes`` is rejected
before any payload is buffered: a corrupt or hostile prefix cannot make the process allocate
gigabytes, and the connection is dropped (``FrameTooLarge``).

Peers send one frame per ``Ready`` and destination carrying every message of that ``Ready``
(a list of ``novacron.raft.to_wire`` dicts), so a batch of entries costs one frame, one write
and one decode on each side.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Large enough for a full AppendEntries of batched 1 KB proposals, small enough to refuse garbage."""


class FrameTooLarge(ValueError):
    """The peer announced a frame larger than the receiver accepts; the connection must be dropped."""


def encode_frame(obj: Any, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    payload: bytes = msgpack.packb(obj, use_bin_type=True)
    if len(payload) > max_frame_bytes:
        raise FrameTooLarge(f"frame of {len(payload)} bytes exceeds the limit of {max_frame_bytes}")
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Turns arbitrary chunks of a byte stream back into the objects that were framed."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[Any]:
        """Add ``chunk`` and yield every frame it completes, in order."""
        self._buffer += chunk
        offset = 0
        buffer = self._buffer
        try:
            while len(buffer) - offset >= HEADER.size:
                (length,) = HEADER.unpack_from(buffer, offset)
                if length > self.max_frame_bytes:
                    raise FrameTooLarge(f"peer announced a frame of {length} bytes; "
                                        f"the limit is {self.max_frame_bytes}")
                end = offset + HEADER.size + length
                if len(buffer) < end:
                    break
                payload = bytes(buffer[offset + HEADER.size:end])
                offset = end
                yield msgpack.unpackb(payload, raw=False)
        finally:
            del buffer[:offset]

    def pending_bytes(self) -> int:
        return len(self._buffer)
