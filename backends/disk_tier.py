"""L3: a ``CacheTier`` of zstd-compressed files on disk, checksummed, written atomically.

Theory of operation
-------------------
Each entry is one file under ``root/<2 hex>/<blake2b(key) hex>``. The file holds a fixed header
(magic, format version, expiry time, key length, raw length), the key, and the zstd-compressed
value; a 16-byte BLAKE2b digest over all of that ends the file. A read re-computes the digest:
a mismatch, a short file or a bad header means corruption, and the entry is deleted and
reported as a miss (counted in ``corrupt_entries``), never returned. Writes go to a temporary
file in the same directory and are renamed over the target (``os.replace`` is atomic on POSIX),
so a reader sees the old file or the new one, never half of one; ``fsync=True`` also makes them
durable across power loss, at the cost of one flush per write.

An in-memory index (key -> stored bytes) is rebuilt from the file headers at start-up, oldest
file first; the size bound (``capacity_bytes``, counted in stored, compressed bytes) is kept by
an LRU from the core's ``policies`` module. One process owns a directory (the index is not
shared). Expiry times are wall-clock seconds (files outlive processes); the clock is
injectable for tests. L3 is the last tier, so what it evicts is dropped.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from pathlib import Path

import zstandard

from backends.clock import WallClock
from novacron.cache.expiry import ExpirySchedule
from novacron.cache.memory import OneKeyAtATimeBatches
from novacron.cache.policies import LruPolicy
from novacron.ports import CacheEntry, Clock, TierUnavailable

MAGIC = b"NCL3"
VERSION = 1
HEADER = struct.Struct("<4sBdHI")  # magic, version, expires_at_s (NaN: never), key length, raw length
DIGEST_BYTES = 16


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


class CorruptEntry(ValueError):
    pass


def encode_entry(key: str, value: bytes, expires_at_s: float | None, compressor: zstandard.ZstdCompressor) -> bytes:
    key_bytes = key.encode()
    body = HEADER.pack(MAGIC, VERSION, math.nan if expires_at_s is None else expires_at_s, len(key_bytes),
                       len(value)) + key_bytes + compressor.compress(value)
    return body + _digest(body)


def decode_entry(blob: bytes, decompressor: zstandard.ZstdDecompressor) -> tuple[str, bytes, float | None]:
    if len(blob) < HEADER.size + DIGEST_BYTES:
        raise CorruptEntry("short file")
    body, digest = blob[:-DIGEST_BYTES], blob[-DIGEST_BYTES:]
    if _digest(body) != digest:
        raise CorruptEntry("checksum mismatch")
    magic, version, expires_at_s, key_len, raw_len = HEADER.unpack_from(body)
    if magic != MAGIC or version != VERSION:
        raise CorruptEntry(f"bad header {magic!r} v{version}")
    key = body[HEADER.size:HEADER.size + key_len].decode()
    try:
        value = decompressor.decompress(body[HEADER.size + key_len:], max_output_size=raw_len)
    except zstandard.ZstdError as exc:
        raise CorruptEntry(f"zstd: {exc}") from None
    if len(value) != raw_len:
        raise CorruptEntry("length mismatch")
    return key, value, None if math.isnan(expires_at_s) else expires_at_s


class DiskTier(OneKeyAtATimeBatches):
    def __init__(self, root: str | os.PathLike[str], name: str = "l3", *, capacity_bytes: int = 1 << 30,
                 default_ttl_s: float | None = None, clock: Clock | None = None, level: int = 3,
                 fsync: bool = False, verify_on_start: bool = False) -> None:
        self.name = name
        self.root = Path(root)
        self.capacity_bytes = capacity_bytes
        self.default_ttl_s = default_ttl_s
        self.clock = clock or WallClock()
        self.fsync = fsync
        self.verify_on_start = verify_on_start
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()
        self._stored: dict[str, tuple[int, float | None]] = {}
        self._lru = LruPolicy()
        self._expiry = ExpirySchedule(self._expiry_of, lambda: ((k, exp) for k, (_size, exp) in self._stored.items()))
        self.used_bytes = 0
        self.corrupt_entries = 0
        self.evictions = 0
        self.root.mkdir(parents=True, exist_ok=True)
        self._rebuild_index()

    def path_of(self, key: str) -> Path:
        name = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self.root / name[:2] / name

    def _rebuild_index(self) -> None:
        """Index the entries already on disk, oldest first (so LRU order survives a restart).

        Only headers are read (start-up stays fast with gigabytes of entries); a body that is
        corrupt is found, counted and removed when it is first read. ``verify_on_start`` checks
        every checksum now instead."""
        found = []
        for path in self.root.glob("*/*"):
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)  # a write that never reached its rename
                continue
            try:
                stat = path.stat()
                key, expires_at_s = self._read_header(path)
            except (CorruptEntry, OSError, UnicodeDecodeError):
                self.corrupt_entries += 1
                path.unlink(missing_ok=True)
                continue
            found.append((stat.st_mtime_ns, key, stat.st_size, expires_at_s))
        for _mtime, key, size, expires_at_s in sorted(found):
            self._index(key, size, expires_at_s)

    def _read_header(self, path: Path) -> tuple[str, float | None]:
        if self.verify_on_start:
            key, _value, expires_at_s = decode_entry(path.read_bytes(), self._decompressor)
            return key, expires_at_s
        with open(path, "rb") as f:
            head = f.read(HEADER.size + 65536)
        if len(head) < HEADER.size + DIGEST_BYTES:
            raise CorruptEntry("short file")
        magic, version, expires_at_s, key_len, _raw_len = HEADER.unpack_from(head)
        if magic != MAGIC or version != VERSION or len(head) < HEADER.size + key_len:
            raise CorruptEntry("bad header")
        key = head[HEADER.size:HEADER.size + key_len].decode()
        if self.path_of(key) != path:
            raise CorruptEntry("key does not match the file name")
        return key, None if math.isnan(expires_at_s) else expires_at_s

    def _index(self, key: str, stored_bytes: int, expires_at_s: float | None) -> None:
        self._stored[key] = (stored_bytes, expires_at_s)
        self.used_bytes += stored_bytes
        self._lru.inserted(key, stored_bytes, 0.0)
        self._expiry.add(key, expires_at_s)

    def _unindex(self, key: str) -> None:
        stored = self._stored.pop(key, None)
        if stored is not None:
            self.used_bytes -= stored[0]
            self._lru.removed(key)

    def get(self, key: str) -> bytes | None:
        stored = self._stored.get(key)
        if stored is None:
            return None
        if stored[1] is not None and stored[1] <= self.clock.now_s():
            self.delete(key)
            return None
        path = self.path_of(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            self._unindex(key)
            return None
        except OSError as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc
        try:
            stored_key, value, _expires = decode_entry(blob, self._decompressor)
            if stored_key != key:
                raise CorruptEntry("key mismatch")
        except (CorruptEntry, UnicodeDecodeError):
            self.corrupt_entries += 1
            self.delete(key)
            return None
        self._lru.accessed(key, 0.0)
        return value

    def contains(self, key: str) -> bool:
        stored = self._stored.get(key)
        return stored is not None and (stored[1] is None or stored[1] > self.clock.now_s())

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        expires_at_s = None if ttl is None else self.clock.now_s() + ttl
        blob = encode_entry(key, value, expires_at_s, self._compressor)
        if len(blob) > self.capacity_bytes:
            self.delete(key)
            return []
        self._unindex(key)
        while self.used_bytes + len(blob) > self.capacity_bytes and self._stored:
            victim = self._lru.victim()
            assert isinstance(victim, str)
            self._remove_file(victim)
            self.evictions += 1
        self._write_atomically(self.path_of(key), blob)
        self._index(key, len(blob), expires_at_s)
        return []

    def _write_atomically(self, path: Path, blob: bytes) -> None:
        try:
            path.parent.mkdir(exist_ok=True)
            tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(blob)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc

    def _remove_file(self, key: str) -> None:
        self._unindex(key)
        try:
            self.path_of(key).unlink(missing_ok=True)
        except OSError as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc

    def delete(self, key: str) -> bool:
        existed = key in self._stored
        self._remove_file(key)
        return existed

    def clear(self) -> int:
        """Delete every entry (the hierarchy's way back after losing track of this tier)."""
        return self.delete_many(list(self._stored))

    def purge_expired(self) -> int:
        """Delete the entries the shared expiry schedule says are due (``novacron.cache.expiry``)."""
        expired = self._expiry.due(self.clock.now_s())
        for key in expired:
            self.delete(key)
        return len(expired)

    def _expiry_of(self, key: str) -> float | None:
        stored = self._stored.get(key)
        return None if stored is None else stored[1]

    def __len__(self) -> int:
        return len(self._stored)
