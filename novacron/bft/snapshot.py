"""A replica's checkpointed state as bytes: the application's snapshot plus the client table.

Theory of operation
-------------------
The client table (each client's last timestamp and reply) is replicated state too: without it a
replica restored from a checkpoint would execute a retried request twice. Both go into one byte
string whose SHA-256 is the checkpoint's state digest, so ``2f + 1`` matching CHECKPOINT messages
certify the table as well. The encoding is the canonical one of ``novacron.bft.messages``; this
module adds the decoder for the few shapes a snapshot uses (ints, bytes, tuples).
"""

from __future__ import annotations

from novacron.bft.messages import canonical


def encode_snapshot(app_state: bytes, client_table: dict[int, tuple[int, bytes]]) -> bytes:
    table = tuple((client, ts, result) for client, (ts, result) in sorted(client_table.items()))
    return canonical((app_state, table))


def decode_snapshot(data: bytes) -> tuple[bytes, dict[int, tuple[int, bytes]]]:
    value, end = _decode(data, 0)
    if end != len(data) or not isinstance(value, tuple) or len(value) != 2:
        raise ValueError("malformed snapshot")
    app_state, table = value
    return app_state, {client: (ts, result) for client, ts, result in table}


def _decode(data: bytes, at: int) -> tuple[object, int]:
    tag = data[at:at + 1]
    if tag == b"i":
        end = data.index(b";", at)
        return int(data[at + 1:end]), end + 1
    if tag in (b"b", b"l"):
        colon = data.index(b":", at)
        size, at = int(data[at + 1:colon]), colon + 1
        if tag == b"b":
            return data[at:at + size], at + size
        items = []
        for _ in range(size):
            item, at = _decode(data, at)
            items.append(item)
        return tuple(items), at
    raise ValueError(f"malformed snapshot at byte {at}")
