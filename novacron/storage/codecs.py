"""Redundancy codecs: n-way replication and Reed-Solomon RS(k, m) over real bytes.

Theory of operation
-------------------
A codec turns an object into ``shards`` pieces of which any ``needed`` give it back:

* ``Replication(n)``: n identical copies; any one decodes. Overhead n, repair reads 1 copy.
* ``ReedSolomon(k, m)``: the object is cut into k data shards and m parity shards are computed
  over GF(2^8) (Reed and Solomon, J. SIAM 1960); the code is maximum distance separable, so
  any k of the k + m shards decode and any m may be lost. Overhead (k + m) / k, but rebuilding
  one lost shard reads k shards (the repair traffic the durability model charges).

The arithmetic is done by a maintained C library from PyPI, not here. Two were measured in the
same run (``benchmarks/bench_storage_codecs.py``, numbers in ``benchmarks/RESULTS_storage.md``):
pyeclib 1.8 (OpenStack Swift's binding to liberasurecode; its wheel bundles Intel ISA-L) and
zfec 1.6 (Tahoe-LAFS's). ISA-L's Cauchy Reed-Solomon (``isa_l_rs_cauchy``) was the fastest by
more than an order of magnitude, so it is the default backend. The Cauchy matrix, unlike
ISA-L's plain Vandermonde one (``isa_l_rs_vand``), is MDS for every (k, m); the property test
checks "any m lost" for each backend it is run with. zfec stays as a second backend: a
cross-check of the default and the same-run baseline.

pyeclib fragments carry their own header (index, size, checksum); zfec shards are bare blocks,
so this module prefixes the object with its length before cutting it (the padding of the last
block is cut off on decode). A shard is always handled with its index: ``decode`` and
``rebuild`` take ``{index: shard}``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

LENGTH = struct.Struct("<Q")
RS_BACKENDS = ("isa_l_rs_cauchy", "isa_l_rs_vand", "liberasurecode_rs_vand", "zfec")
DEFAULT_RS_BACKEND = "isa_l_rs_cauchy"


class NotEnoughShards(ValueError):
    """Fewer shards survive than the codec needs: the object is lost."""


class Codec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def shards(self) -> int:
        """How many shards ``encode`` makes."""
        ...

    @property
    def needed(self) -> int:
        """How many shards ``decode`` needs."""
        ...

    def encode(self, data: bytes) -> list[bytes]: ...

    def decode(self, shards: Mapping[int, bytes]) -> bytes: ...

    def rebuild(self, shards: Mapping[int, bytes], missing: Sequence[int]) -> dict[int, bytes]: ...


def _check_count(shards: Mapping[int, bytes], codec: Codec) -> None:
    if len(shards) < codec.needed:
        raise NotEnoughShards(f"{codec.name}: {len(shards)} shards survive, {codec.needed} needed")


@dataclass(frozen=True, slots=True)
class Replication:
    copies: int = 3
    name: str = field(init=False)
    shards: int = field(init=False)
    needed: int = 1

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ValueError(f"replication copies={self.copies!r}; allowed: an integer >= 1")
        object.__setattr__(self, "name", f"replication x{self.copies}")
        object.__setattr__(self, "shards", self.copies)

    def encode(self, data: bytes) -> list[bytes]:
        return [data] * self.copies

    def decode(self, shards: Mapping[int, bytes]) -> bytes:
        _check_count(shards, self)
        return next(iter(shards.values()))

    def rebuild(self, shards: Mapping[int, bytes], missing: Sequence[int]) -> dict[int, bytes]:
        copy = self.decode(shards)
        return dict.fromkeys(missing, copy)


@dataclass(frozen=True, slots=True)
class ReedSolomon:
    """RS(k, m) through pyeclib (``isa_l_*``, ``liberasurecode_rs_vand``) or zfec."""

    k: int
    m: int
    backend: str = DEFAULT_RS_BACKEND
    name: str = field(init=False)
    shards: int = field(init=False)
    needed: int = field(init=False)
    _driver: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.k < 1 or self.m < 1 or self.k + self.m > 32:
            raise ValueError(f"RS(k={self.k!r}, m={self.m!r}); allowed: k >= 1, m >= 1, k + m <= 32")
        if self.backend not in RS_BACKENDS:
            raise ValueError(f"RS backend={self.backend!r}; allowed: {', '.join(RS_BACKENDS)}")
        object.__setattr__(self, "name", f"RS({self.k},{self.m}) {self.backend}")
        object.__setattr__(self, "shards", self.k + self.m)
        object.__setattr__(self, "needed", self.k)
        object.__setattr__(self, "_driver", _zfec_pair(self.k, self.m) if self.backend == "zfec"
                           else _pyeclib_driver(self.k, self.m, self.backend))

    def encode(self, data: bytes) -> list[bytes]:
        if self.backend != "zfec":
            return list(self._driver.encode(data))
        encoder, _decoder = self._driver
        framed = LENGTH.pack(len(data)) + data
        block_bytes = -(-len(framed) // self.k)
        framed = framed.ljust(block_bytes * self.k, b"\0")
        blocks = [framed[i * block_bytes:(i + 1) * block_bytes] for i in range(self.k)]
        return [bytes(share) for share in encoder.encode(blocks)]

    def decode(self, shards: Mapping[int, bytes]) -> bytes:
        _check_count(shards, self)
        if self.backend != "zfec":
            return bytes(self._driver.decode(list(shards.values())))
        _encoder, decoder = self._driver
        indices = sorted(shards)[: self.k]
        framed = b"".join(decoder.decode([shards[i] for i in indices], indices))
        (length,) = LENGTH.unpack_from(framed)
        return framed[LENGTH.size:LENGTH.size + length]

    def rebuild(self, shards: Mapping[int, bytes], missing: Sequence[int]) -> dict[int, bytes]:
        """The lost shards ``missing``, recomputed from the survivors (identical to the originals)."""
        _check_count(shards, self)
        if not missing:
            return {}
        if self.backend != "zfec":
            # liberasurecode returns the rebuilt fragments in its own order: each names its index
            rebuilt = self._driver.reconstruct(list(shards.values()), list(missing))
            return {self._driver.get_metadata(s, formatted=True)["index"]: bytes(s) for s in rebuilt}
        everything = self.encode(self.decode(shards))
        return {index: everything[index] for index in missing}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def _pyeclib_driver(k: int, m: int, ec_type: str) -> Any:
    try:
        from pyeclib.ec_iface import ECDriver
    except ImportError:
        raise MissingExtra(f"RS backend {ec_type} needs pyeclib: pip install 'novacron[storage]'") from None
    return ECDriver(k=k, m=m, ec_type=ec_type)


def _zfec_pair(k: int, m: int) -> tuple[Any, Any]:
    try:
        import zfec
    except ImportError:
        raise MissingExtra("RS backend zfec needs zfec: pip install 'novacron[storage]'") from None
    return zfec.Encoder(k, k + m), zfec.Decoder(k, k + m)


def make_codec(scheme: str, backend: str = DEFAULT_RS_BACKEND) -> Codec:
    """``replicationN`` or ``rsK+M`` (e.g. ``replication3``, ``rs6+3``, ``rs10+4``)."""
    try:
        if scheme.startswith("replication"):
            return Replication(int(scheme.removeprefix("replication")))
        if scheme.startswith("rs"):
            k, m = scheme.removeprefix("rs").split("+")
            return ReedSolomon(int(k), int(m), backend)
    except ValueError as exc:
        if "allowed" in str(exc):
            raise
    raise ValueError(f"scheme={scheme!r}; allowed: replicationN or rsK+M (e.g. replication3, rs6+3, rs10+4)")
