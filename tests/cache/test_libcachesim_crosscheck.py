"""Cross-check against libCacheSim (PyPI ``libcachesim``, GPL, a test-only dependency): LRU and
S3-FIFO miss ratios on the same synthetic traces agree within 0.5 percentage points, libCacheSim
reads our oracleGeneral files, and its Belady never beats ours."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from novacron.app.tracefiles import read_oracle, write_oracle
from novacron.cache.belady import belady_hits
from novacron.cache.policies import make_policy
from novacron.cache.traces import Request, scan_trace, shifting_trace, zipf_trace

try:
    import libcachesim as lcs
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("libcachesim is not installed (pip install libcachesim; the 'dev' extra has it)",
                allow_module_level=True)

TOLERANCE_PP = 0.5
SEED = 20231023


def our_miss_ratio(keys: list[int], capacity: int, policy_name: str) -> float:
    policy = make_policy(policy_name, capacity)
    cached: set[int] = set()
    hits = 0
    for key in keys:
        if key in cached:
            hits += 1
            policy.accessed(key, 0.0)
            continue
        while len(cached) >= capacity:
            cached.discard(policy.victim())  # type: ignore[arg-type]
        cached.add(key)
        policy.inserted(key, 1, 0.0)
    return 1.0 - hits / len(keys)


def their_miss_ratio(keys: list[int], capacity: int, policy_name: str) -> float:
    cache: Any = lcs.LRU(capacity) if policy_name == "lru" else lcs.S3FIFO(capacity)
    hits = sum(bool(cache.get(lcs.Request(obj_size=1, obj_id=key))) for key in keys)
    return 1.0 - hits / len(keys)


def traces() -> dict[str, list[Request]]:
    rng = np.random.default_rng(SEED)
    return {
        "zipf-0.8": zipf_trace(rng, n_objects=10_000, alpha=0.8, n_requests=60_000),
        "zipf-1.2": zipf_trace(rng, n_objects=10_000, alpha=1.2, n_requests=60_000),
        "scans": scan_trace(rng, n_objects=10_000, alpha=1.0, n_requests=60_000, scan_length=1500, scan_every=8000),
        "shifts": shifting_trace(rng, n_objects=10_000, alpha=1.0, n_requests=60_000, phases=4),
    }


TRACES = traces()


@pytest.mark.parametrize("capacity", [100, 1000])
@pytest.mark.parametrize("policy_name", ["lru", "s3fifo"])
@pytest.mark.parametrize("trace_name", sorted(TRACES))
def test_miss_ratio_matches_libcachesim(trace_name: str, policy_name: str, capacity: int) -> None:
    keys = [r.key for r in TRACES[trace_name]]
    ours, theirs = our_miss_ratio(keys, capacity, policy_name), their_miss_ratio(keys, capacity, policy_name)
    assert abs(ours - theirs) * 100 <= TOLERANCE_PP, (
        f"seed {SEED} {trace_name} {policy_name} capacity {capacity}: ours {ours:.4f} libCacheSim {theirs:.4f}")


def test_libcachesim_reads_our_oracle_general_file(tmp_path: Path) -> None:
    requests = TRACES["zipf-0.8"][:5000]
    path = tmp_path / "trace.oracleGeneral"
    with path.open("wb") as f:
        write_oracle(f, requests)
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    theirs = [(req.obj_id, req.obj_size) for _, req in zip(range(len(requests)), reader, strict=False)]
    assert theirs == [(r.key, r.size_bytes) for r in requests]
    with path.open("rb") as f:
        assert [r.key for r in read_oracle(f)] == [r.key for r in requests]
    cache = lcs.Belady(200)
    their_miss, _ = cache.process_trace(lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE))
    our_miss = 1 - belady_hits([r.key for r in requests], 200) / len(requests)
    assert our_miss <= their_miss + 1e-9
