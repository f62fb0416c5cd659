"""Request trace files: streaming CSV and libCacheSim oracleGeneral codecs (the application layer).

Theory of operation
-------------------
Readers take an already opened stream from the caller and yield ``novacron.cache.traces.Request``
one at a time, so traces larger than memory stream through.

* CSV: a header row naming ``time``, ``key``, ``size`` and optionally ``op`` (``get``, ``set``,
  ``delete``; missing means ``get``), in any column order.
* oracleGeneral (libCacheSim's binary format): little-endian records of 24 bytes,
  ``uint32 timestamp, uint64 obj_id, uint32 obj_size, int64 next_access_vtime`` (-1 when the
  object is never requested again).
"""

from __future__ import annotations

import csv
import struct
from collections.abc import Iterable, Iterator
from typing import IO

from novacron.cache.traces import Request, next_access_positions

ORACLE_RECORD = struct.Struct("<IQIq")
_OP_ALIASES = {"get": "get", "read": "get", "set": "set", "write": "set", "put": "set",
               "delete": "delete", "del": "delete", "": "get"}


class TraceError(ValueError):
    """A malformed trace; the message names the record."""


def read_csv(stream: IO[str], *, origin: str = "trace") -> Iterator[Request]:
    reader = csv.reader(stream)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return
    missing = [c for c in ("time", "key", "size") if c not in header]
    if missing:
        raise TraceError(f"{origin}: header {header} lacks column(s) {missing}; need time,key,size[,op]")
    t_col, k_col, s_col = header.index("time"), header.index("key"), header.index("size")
    op_col = header.index("op") if "op" in header else None
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            op = _OP_ALIASES[row[op_col].strip().lower()] if op_col is not None else "get"
            yield Request(float(row[t_col]), _key(row[k_col]), int(row[s_col]), op)
        except (ValueError, IndexError, KeyError) as exc:
            raise TraceError(f"{origin}: line {line_no}: cannot read {row!r} ({exc})") from None


def _key(text: str) -> int:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        # Non-numeric keys map to a stable 63-bit id (hash() is salted per process).
        return _fnv1a_64(text)


def _fnv1a_64(text: str) -> int:
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value >> 1


def write_csv(stream: IO[str], requests: Iterable[Request]) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["time", "key", "size", "op"])
    count = 0
    for r in requests:
        writer.writerow([f"{r.time_s:g}", r.key, r.size_bytes, r.op])
        count += 1
    return count


def read_oracle(stream: IO[bytes], *, origin: str = "trace", chunk_records: int = 65536) -> Iterator[Request]:
    """Stream oracleGeneral records (a truncated last record is an error)."""
    size = ORACLE_RECORD.size
    offset = 0
    while True:
        chunk = stream.read(size * chunk_records)
        if not chunk:
            return
        if len(chunk) % size:
            raise TraceError(f"{origin}: {len(chunk) % size} trailing bytes after record "
                             f"{(offset + len(chunk)) // size}; oracleGeneral records are {size} bytes")
        for timestamp, obj_id, obj_size, _next in ORACLE_RECORD.iter_unpack(chunk):
            yield Request(float(timestamp), obj_id, obj_size, "get")
        offset += len(chunk)


def write_oracle(stream: IO[bytes], requests: list[Request]) -> int:
    following = next_access_positions([r.key for r in requests])
    pack = ORACLE_RECORD.pack
    stream.write(b"".join(pack(int(r.time_s), r.key, r.size_bytes, nxt)
                          for r, nxt in zip(requests, following, strict=True)))
    return len(requests)
