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

Both readers reject what would make an evaluation meaningless, naming the record: a negative or
non-finite time, a size outside oracleGeneral's uint32, time going backwards (a trace is in time
order), and a file that is not text (CSV) — one-line ``TraceError`` messages.
"""

from __future__ import annotations

import csv
import math
import struct
from collections.abc import Iterable, Iterator
from typing import IO

from novacron.cache.traces import Request, next_access_positions

ORACLE_RECORD = struct.Struct("<IQIq")
_OP_ALIASES = {"get": "get", "read": "get", "set": "set", "write": "set", "put": "set",
               "delete": "delete", "del": "delete", "": "get"}


MAX_OBJECT_BYTES = 2**32 - 1


class TraceError(ValueError):
    """A malformed trace; the message names the record."""


def _checked(request: Request, previous_s: float, where: str) -> Request:
    if not math.isfinite(request.time_s) or request.time_s < 0:
        raise TraceError(f"{where}: time {request.time_s!r} is not allowed; allowed: a finite number >= 0")
    if not 0 <= request.size_bytes <= MAX_OBJECT_BYTES:
        raise TraceError(f"{where}: size {request.size_bytes} is not allowed; allowed: an integer from 0 to "
                         f"{MAX_OBJECT_BYTES} (oracleGeneral's uint32)")
    if request.time_s < previous_s:
        raise TraceError(f"{where}: time {request.time_s:g} is before the previous request's {previous_s:g}; "
                         "allowed: requests in time order")
    return request


def read_csv(stream: IO[str], *, origin: str = "trace") -> Iterator[Request]:
    try:
        yield from _read_csv(stream, origin)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TraceError(f"{origin}: not a CSV text trace ({type(exc).__name__}: {' '.join(str(exc).split())[:100]})"
                         ) from None


def _read_csv(stream: IO[str], origin: str) -> Iterator[Request]:
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
    previous_s = 0.0
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            op = _OP_ALIASES[row[op_col].strip().lower()] if op_col is not None else "get"
            request = Request(float(row[t_col]), _key(row[k_col]), int(row[s_col]), op)
        except (ValueError, IndexError, KeyError) as exc:
            shown = " ".join(repr(row).split())[:100]
            raise TraceError(f"{origin}: line {line_no}: cannot read {shown} ({' '.join(str(exc).split())[:80]})"
                             ) from None
        yield _checked(request, previous_s, f"{origin}: line {line_no}")
        previous_s = request.time_s


def _key(text: str) -> int:
    text = text.strip()
    try:
        key = int(text)
        if -(2**63) <= key < 2**63:
            return key
        return _fnv1a_64(text)  # beyond int64: treated as a name
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
    previous_s = 0.0
    while True:
        chunk = stream.read(size * chunk_records)
        if not chunk:
            return
        if len(chunk) % size:
            raise TraceError(f"{origin}: {len(chunk) % size} trailing bytes after record "
                             f"{(offset + len(chunk)) // size}; oracleGeneral records are {size} bytes")
        for number, (timestamp, obj_id, obj_size, _next) in enumerate(ORACLE_RECORD.iter_unpack(chunk)):
            request = Request(float(timestamp), obj_id, obj_size, "get")
            yield _checked(request, previous_s, f"{origin}: record {offset // size + number + 1}")
            previous_s = request.time_s
        offset += len(chunk)


def write_oracle(stream: IO[bytes], requests: list[Request]) -> int:
    following = next_access_positions([r.key for r in requests])
    pack = ORACLE_RECORD.pack
    stream.write(b"".join(pack(int(r.time_s), r.key, r.size_bytes, nxt)
                          for r, nxt in zip(requests, following, strict=True)))
    return len(requests)
