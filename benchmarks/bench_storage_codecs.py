"""Codec benchmark: RS(k, m) encode/decode/rebuild MB/s through ``novacron.storage.codecs``, against
each library's raw calls in the same run, for pyeclib (ISA-L, liberasurecode) and zfec.

    nice -n 10 .venv/bin/python -m benchmarks.bench_storage_codecs [--mib 16] [--repeats 5]

"decode" is the worst case for a systematic code: the first m data shards are lost, so the
library must compute them from parity. "rebuild" recomputes one lost data shard from k
survivors (a repair). The best of ``repeats`` passes is reported (the least disturbed by other
jobs); MB/s counts the object's bytes (MiB = 2**20 bytes). Prints Markdown and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from functools import partial

from novacron.storage.codecs import RS_BACKENDS, ReedSolomon


def best_mib_s(action: Callable[[], object], size_bytes: int, repeats: int) -> float:
    action()  # warm-up: first calls allocate buffers and fault pages in
    best_s = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best_s = min(best_s, time.perf_counter() - start)
    return size_bytes / best_s / (1 << 20)


def raw_actions(codec: ReedSolomon, data: bytes) -> tuple[Callable[[], object], Callable[[], object]]:
    """Encode and worst-case decode calling the library directly, with no wrapper work."""
    k, m = codec.k, codec.m
    if codec.backend == "zfec":
        encoder, decoder = codec._driver
        block_bytes = -(-len(data) // k)
        blocks = [data[i * block_bytes:(i + 1) * block_bytes].ljust(block_bytes, b"\0") for i in range(k)]
        shares = encoder.encode(blocks)
        keep = list(range(m, k + m))
        return (lambda: encoder.encode(blocks)), (lambda: decoder.decode([shares[i] for i in keep], keep))
    driver = codec._driver
    fragments = driver.encode(data)
    return (lambda: driver.encode(data)), (lambda: driver.decode(fragments[m:]))


def codec_rows(k: int, m: int, data: bytes, repeats: int) -> list[str]:
    rows = []
    for backend in RS_BACKENDS:
        codec = ReedSolomon(k, m, backend)
        shards = codec.encode(data)
        survivors = {i: shards[i] for i in range(m, k + m)}
        one_lost = {i: shards[i] for i in range(1, k + 1)}
        raw_encode, raw_decode = raw_actions(codec, data)
        ours: list[Callable[[], object]] = [partial(codec.encode, data), partial(codec.decode, survivors),
                                            partial(codec.rebuild, one_lost, [0])]
        actions = (ours[0], raw_encode, ours[1], raw_decode, ours[2])
        rates = [best_mib_s(action, len(data), repeats) for action in actions]
        rows.append(f"| RS({k},{m}) | {backend} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[0] / rates[1]:.2f} "
                    f"| {rates[2]:,.0f} | {rates[3]:,.0f} | {rates[2] / rates[3]:.2f} | {rates[4]:,.0f} |")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="object size in MiB")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    data = os.urandom(args.mib << 20)
    print(f"load average before: {os.getloadavg()}; object {args.mib} MiB")
    print("| code | backend | encode MiB/s | raw encode MiB/s | ours / raw | decode (m data lost) MiB/s "
          "| raw decode MiB/s | ours / raw | rebuild 1 shard MiB/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    codec_rows(6, 3, data[: 1 << 20], 1)  # discarded: the first rows measured ran slow in every trial run
    for k, m in ((6, 3), (10, 4)):
        print("\n".join(codec_rows(k, m, data, args.repeats)))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
