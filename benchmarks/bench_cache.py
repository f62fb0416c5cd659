"""Cache benchmarks: L1 against a dict and cachetools, the hierarchy over real Redis against
redis-benchmark on the same server, and hit rates on Zipf traces against Belady.

Run with the project's benchmark command (see benchmarks/RESULTS_cache.md); ratios are measured
within one run so the machine's load cancels out.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import timeit
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import cachetools
import numpy as np
import pytest

from backends.clock import MonotonicClock
from novacron.cache.belady import belady_hits
from novacron.cache.clock import ManualClock
from novacron.cache.hierarchy import CacheHierarchy
from novacron.cache.memory import MemoryTier
from novacron.cache.policies import replay_hits
from novacron.cache.traces import ZipfSampler, next_access_positions

N_KEYS = 10_000
KEYS = [f"key-{i}" for i in range(N_KEYS)]
NEW_KEYS = [f"new-{i}" for i in range(N_KEYS)]
VALUE = b"v" * 64


def _l1(policy: str = "lru", ttl_s: float | None = None) -> MemoryTier:
    return MemoryTier("l1", clock=ManualClock(), capacity_items=N_KEYS, default_ttl_s=ttl_s, policy=policy)


def _full(store: Any) -> Any:
    for key in KEYS:
        store[key] = VALUE
    return store


class _L1Mapping:
    """Adapts MemoryTier to item assignment so every contender is filled the same way."""

    def __init__(self, tier: MemoryTier) -> None:
        self.tier = tier

    def __setitem__(self, key: str, value: bytes) -> None:
        self.tier.set(key, value)


def _contenders() -> dict[str, Callable[[], tuple[Callable[[str], object], Callable[[str, bytes], object]]]]:
    def plain_dict() -> tuple[Callable[[str], object], Callable[[str, bytes], object]]:
        d: dict[str, bytes] = _full({})
        return d.get, d.__setitem__

    def lru_cache() -> tuple[Callable[[str], object], Callable[[str, bytes], object]]:
        c: cachetools.LRUCache[str, bytes] = _full(cachetools.LRUCache(maxsize=N_KEYS))
        return c.get, c.__setitem__

    def l1(policy: str, ttl_s: float | None) -> Callable[[], tuple[Callable[[str], object],
                                                             Callable[[str, bytes], object]]]:
        def make() -> tuple[Callable[[str], object], Callable[[str, bytes], object]]:
            tier = _l1(policy, ttl_s)
            _full(_L1Mapping(tier))
            return tier.get, tier.set
        return make

    return {"dict": plain_dict, "cachetools.LRUCache": lru_cache, "L1 lru": l1("lru", None),
            "L1 lru ttl=300s": l1("lru", 300.0), "L1 s3fifo": l1("s3fifo", None), "L1 tlru": l1("tlru", None)}


CONTENDERS = _contenders()


@pytest.mark.benchmark(group="l1-get (10k hits per round)")
@pytest.mark.parametrize("name", list(CONTENDERS))
def test_l1_get(benchmark: Any, name: str) -> None:
    get, _set = CONTENDERS[name]()

    def run() -> None:
        for key in KEYS:
            get(key)

    benchmark(run)
    benchmark.extra_info["ops_per_s"] = N_KEYS / benchmark.stats.stats.mean
    if name.startswith("L1"):
        benchmark.extra_info["baseline"] = "test_l1_get[cachetools.LRUCache]"  # tracked by novacron bench


@pytest.mark.benchmark(group="l1-set (10k new keys into a full cache per round)")
@pytest.mark.parametrize("name", list(CONTENDERS))
def test_l1_set(benchmark: Any, name: str) -> None:
    _get, put = CONTENDERS[name]()
    rounds = iter(range(10**9))

    def run() -> None:
        tag = next(rounds)
        for key in NEW_KEYS:
            put(f"{key}-{tag}" if tag % 2 else key, VALUE)

    benchmark(run)
    benchmark.extra_info["ops_per_s"] = N_KEYS / benchmark.stats.stats.mean
    if name.startswith("L1"):
        benchmark.extra_info["baseline"] = "test_l1_set[cachetools.LRUCache]"  # tracked by novacron bench


def _best_s(fn: Callable[[], None]) -> float:
    return min(timeit.repeat(fn, number=3, repeat=7)) / 3


def test_l1_is_at_least_half_as_fast_as_cachetools(record_property: Any) -> None:
    """The acceptance ratio, measured back to back in one process (LRU, no TTL, like for like)."""
    ratios = {}
    for op in ("get", "set"):
        times = {}
        for name in ("cachetools.LRUCache", "L1 lru"):
            get, put = CONTENDERS[name]()
            if op == "get":
                times[name] = _best_s(lambda get=get: [get(k) for k in KEYS] and None)
            else:
                times[name] = _best_s(lambda put=put: [put(k, VALUE) for k in NEW_KEYS + KEYS] and None)
        ratios[op] = times["cachetools.LRUCache"] / times["L1 lru"]
        record_property(f"l1_{op}_speed_vs_cachetools", round(ratios[op], 3))
    print(f"\nL1 speed relative to cachetools.LRUCache: get {ratios['get']:.2f}x, set {ratios['set']:.2f}x")
    assert ratios["get"] >= 0.5 and ratios["set"] >= 0.5, ratios


# -- the hierarchy over a real Redis -----------------------------------------------------------

@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.cache.conftest import RedisServer, _state_dir

    server = RedisServer(_state_dir())
    server.start()
    yield server
    server.stop()


BATCH = 100
REDIS_KEYS = [f"bench-{i}" for i in range(20_000)]


def _redis_hierarchy(url: str) -> tuple[CacheHierarchy, Any]:
    from backends.redis_tier import RedisTier

    l2 = RedisTier(url=url, prefix=f"bench-{uuid.uuid4().hex}:")
    l1 = MemoryTier("l1", clock=MonotonicClock(), capacity_items=1, default_ttl_s=300.0)
    return CacheHierarchy([l1, l2], clock=MonotonicClock()), l2


@pytest.mark.redis
@pytest.mark.benchmark(group="hierarchy over Redis (L1 misses, served by L2)")
@pytest.mark.parametrize("mode", ["get_many pipelined x100", "get one by one"])
def test_hierarchy_redis_reads(benchmark: Any, redis_server: Any, mode: str) -> None:
    cache, l2 = _redis_hierarchy(redis_server.url)
    l2.set_many({k: VALUE for k in REDIS_KEYS})
    keys = REDIS_KEYS[:2000]

    def batched() -> None:
        for start in range(0, len(keys), BATCH):
            cache.get_many(keys[start:start + BATCH])

    def single() -> None:
        for key in keys:
            cache.get(key)

    benchmark.pedantic(batched if mode.startswith("get_many") else single, rounds=5, iterations=1)
    benchmark.extra_info["ops_per_s"] = len(keys) / benchmark.stats.stats.mean
    assert cache.stats.hits[1] > 0 and cache.stats.failures[1] == 0
    l2.clear()
    l2.close()


@pytest.mark.redis
@pytest.mark.benchmark(group="hierarchy over Redis (L1 misses, served by L2)")
@pytest.mark.parametrize("mode", ["set_many pipelined x100"])
def test_hierarchy_redis_writes(benchmark: Any, redis_server: Any, mode: str) -> None:
    cache, l2 = _redis_hierarchy(redis_server.url)
    keys = REDIS_KEYS[:2000]

    def batched() -> None:
        for start in range(0, len(keys), BATCH):
            cache.set_many({k: VALUE for k in keys[start:start + BATCH]})

    benchmark.pedantic(batched, rounds=5, iterations=1)
    benchmark.extra_info["ops_per_s"] = len(keys) / benchmark.stats.stats.mean
    l2.clear()
    l2.close()


@pytest.mark.redis
@pytest.mark.benchmark(group="hierarchy over Redis (L1 misses, served by L2)")
@pytest.mark.parametrize("mode", ["redis-py MGET x100, no hierarchy", "redis-py pipelined SET x100, no hierarchy"])
def test_redis_py_baseline(benchmark: Any, redis_server: Any, mode: str) -> None:
    """The same client library without the hierarchy: what the hierarchy's own overhead adds to."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    prefix = f"raw-{uuid.uuid4().hex}:"
    keys = [prefix + k for k in REDIS_KEYS[:2000]]
    client.mset({k: VALUE for k in keys})

    def mget() -> None:
        for start in range(0, len(keys), BATCH):
            client.mget(keys[start:start + BATCH])

    def pipelined_set() -> None:
        for start in range(0, len(keys), BATCH):
            with client.pipeline(transaction=False) as pipe:
                for key in keys[start:start + BATCH]:
                    pipe.set(key, VALUE, px=3_600_000)
                pipe.execute()

    benchmark.pedantic(mget if mode.startswith("redis-py MGET") else pipelined_set, rounds=5, iterations=1)
    benchmark.extra_info["ops_per_s"] = len(keys) / benchmark.stats.stats.mean
    client.delete(*keys)
    client.close()


@pytest.mark.redis
def test_redis_benchmark_baseline(redis_server: Any, record_property: Any) -> None:
    """redis-benchmark on the same server: the ceiling the pipelined hierarchy is compared with."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        pytest.skip("redis-benchmark is not installed")
    for pipeline in (1, BATCH):
        out = subprocess.run([tool, "-p", str(redis_server.port), "-n", "100000", "-t", "get,set", "-d", "64",
                              "-c", "1", "-P", str(pipeline), "--csv"], capture_output=True, text=True, timeout=300,
                             check=True).stdout
        for row in csv.reader(io.StringIO(out)):
            if row and row[0] in ("GET", "SET"):
                record_property(f"redis_benchmark_{row[0].lower()}_P{pipeline}_rps", float(row[1]))
                print(f"\nredis-benchmark -c 1 -P {pipeline} {row[0]}: {float(row[1]):,.0f} requests/s")


# -- hit rates on Zipf traces against Belady -----------------------------------------------------

@pytest.mark.benchmark(group="zipf hit rate vs Belady (100k objects, 1M requests, cache 1 %)")
@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.2])
def test_zipf_hit_rate_vs_belady(benchmark: Any, alpha: float) -> None:
    rng = np.random.default_rng(12345)
    n_objects, n_requests, capacity = 100_000, 1_000_000, 1_000
    keys = rng.permutation(n_objects)[ZipfSampler(n_objects, alpha).draw(rng, n_requests)].tolist()
    following = next_access_positions(keys)
    rates = {}

    def run() -> None:
        for name in ("lru", "tlru", "s3fifo"):
            rates[name] = 100.0 * replay_hits(name, keys, capacity, half_life_s=float(capacity)) / n_requests
        rates["belady"] = 100.0 * belady_hits(keys, capacity, following) / n_requests

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({f"hit_rate_pct_{k}": round(v, 2) for k, v in rates.items()})
    print(f"\nalpha {alpha}: " + ", ".join(f"{k} {v:.2f} %" for k, v in rates.items()))
    assert all(rates[name] <= rates["belady"] for name in ("lru", "tlru", "s3fifo"))


# -- the simulator at scale ----------------------------------------------------------------------

MILLION = """
name = "cache-million"
duration_s = 1001.0
[workload]
vms = 0
[cache]
keys = 1000000
l1_capacity_items = 10000
l2_capacity_items = 200000
l3_capacity_gib = 128.0
zipf_alpha = 0.9
requests_per_s = 1000.0
active_s = 1000.0
tick_s = 10.0
"""


@pytest.mark.benchmark(group="simulated cache, 1M requests over 1M keys (warm start included)")
def test_simulate_a_million_requests(benchmark: Any) -> None:
    from novacron.metrics import compute_metrics
    from novacron.scenario import loads_scenario
    from sim.run import simulate

    scenario = loads_scenario(MILLION, origin="bench")
    metrics: dict[str, float] = {}

    def run() -> None:
        metrics.update(compute_metrics(list(simulate(scenario, 1).log)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    requests = metrics["cache.overall.requests"]
    benchmark.extra_info.update({"requests": requests, "requests_per_wall_s": requests / benchmark.stats.stats.mean,
                                 **{k: round(v, 2) for k, v in metrics.items() if k.endswith("hit_rate_pct")}})
    print(f"\nsimulated {requests:,.0f} requests: " + ", ".join(
        f"{k} {v:.2f}" for k, v in metrics.items() if k.endswith("hit_rate_pct")))
    assert requests > 950_000
