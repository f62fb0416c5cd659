"""Codec benchmark: RS(k, m) encode/decode/rebuild MB/s through ``novacron.storage.codecs``, against
each library's raw calls in the same run, for pyeclib (ISA-L, liberasurecode) and zfec.

    nice -n 10 .venv/bin/python -m benchmarks.bench_storage_codecs [--mib 16] [--repeats 5]

"decode" is the worst case for a systematic code: the first m data shards are lost, so the
library must compute them from parity. "rebuild" recomputes one lost data shard from k
survivors (a repair). The best of ``repeats`` interleaved rounds is reported (the least
disturbed by other jobs); MB/s counts the object's bytes (MiB = 2**20 bytes). Prints Markdown and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from functools import partial

from novacron.storage.codecs import RS_BACKENDS, ReedSolomon


def timed_s(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


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
    """Rounds interleave every backend and action, so a burst of load on the shared machine hits
    them alike; the best round of each is kept."""
    actions: dict[str, list[Callable[[], object]]] = {}
    for backend in RS_BACKENDS:
        codec = ReedSolomon(k, m, backend)
        shards = codec.encode(data)
        survivors = {i: shards[i] for i in range(m, k + m)}
        one_lost = {i: shards[i] for i in range(1, k + 1)}
        raw_encode, raw_decode = raw_actions(codec, data)
        actions[backend] = [partial(codec.encode, data), raw_encode, partial(codec.decode, survivors), raw_decode,
                            partial(codec.rebuild, one_lost, [0])]
        for action in actions[backend]:
            action()  # warm-up: first calls allocate buffers and fault pages in
    best_s = {backend: [float("inf")] * 5 for backend in RS_BACKENDS}
    for _ in range(repeats):
        for backend, backend_actions in actions.items():
            for index, action in enumerate(backend_actions):
                best_s[backend][index] = min(best_s[backend][index], timed_s(action))
    rows = []
    for backend in RS_BACKENDS:
        rates = [len(data) / seconds / (1 << 20) for seconds in best_s[backend]]
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
    for k, m in ((6, 3), (10, 4)):
        print("\n".join(codec_rows(k, m, data, args.repeats)))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
