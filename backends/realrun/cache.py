"""The real runtime's cache: the core hierarchy over L1 memory, a real Redis (L2) and disk (L3).

Theory of operation
-------------------
``RedisProcess`` is one ``redis-server`` on a private loopback port, started in the foreground
as a child (its pid file goes to ``$NOVACRON_TEST_STATE`` when set, so the test command's trap
kills a leftover); ``restart`` is the scenario's L2 outage done for real: SIGKILL at
``[cache] l2_outage_start_s``, a fresh empty server on the same port ``l2_outage_s`` later.

``CacheLoad`` drives the hierarchy of ``backends.cache_runtime`` (the same core
``CacheHierarchy`` the simulation drives, with latencies measured around every real tier call)
with the scenario's request stream: each batch of ``tick_s`` a Poisson number of requests for
Zipf-popular keys (``novacron.cache.traces.ZipfSampler``) plus never-seen keys, read-through (a
full miss writes the value back). The cache starts warm, as the simulation's does by default: L3
holds every key, L2 and L1 the most popular that fit. The hierarchy's circuit breaker turns the
dead Redis into ``CacheTierFailed``/``CacheTierRecovered`` events, as in the simulation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from backends.cache_runtime import RealCache, build_real_cache
from backends.clock import MonotonicClock
from backends.ports import free_port
from novacron.cache.config import CacheConfig
from novacron.cache.traces import ZipfSampler
from novacron.events import Recorder

REDIS_START_TIMEOUT_S = 10.0


class RedisProcess:
    def __init__(self, work_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/test installs the Debian package)")
        self.binary, self.work_dir = binary, work_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        state = os.environ.get("NOVACRON_TEST_STATE")
        self.pid_file = Path(state or work_dir) / f"novacron-realrun-redis-{self.port}.pid"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.work_dir), "--logfile", str(self.work_dir / f"redis-{self.port}.log")]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid_file.write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port}; log in {self.work_dir}")

    def kill(self) -> None:
        """SIGKILL (as abrupt as a crash) and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        self.pid_file.unlink(missing_ok=True)


class CacheLoad:
    def __init__(self, cfg: CacheConfig, redis_url: str, recorder: Recorder, clock: MonotonicClock,
                 rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self._l3_dir = tempfile.TemporaryDirectory(prefix="novacron-l3-")
        self._ssd_dir = tempfile.TemporaryDirectory(prefix="novacron-ssd-") if cfg.ssd_capacity_gib > 0 else None
        self.cache: RealCache = build_real_cache(
            redis_url=redis_url, l3_dir=self._l3_dir.name, events=recorder, clock=clock,
            l1_capacity_items=cfg.l1_capacity_items, l1_ttl_s=cfg.l1_ttl_s, cleanup_interval_s=cfg.cleanup_interval_s,
            l2_ttl_s=cfg.l2_ttl_s, l3_capacity_bytes=int(cfg.l3_capacity_gib * 2**30), l3_ttl_s=cfg.l3_ttl_s,
            policy=cfg.policy, write_mode=cfg.write_mode, stats_interval_s=cfg.stats_interval_s,
            ssd_dir=self._ssd_dir.name if self._ssd_dir else None, ssd_capacity_bytes=int(cfg.ssd_capacity_gib * 2**30),
            ssd_ttl_s=cfg.ssd_ttl_s)
        self.key_names = [f"k{i}" for i in range(cfg.keys)]
        self.popularity = rng.permutation(cfg.keys)
        self.sampler = ZipfSampler(cfg.keys, cfg.zipf_alpha)
        self.value = bytes(cfg.object_bytes)
        self.new_keys = 0

    def warm_start(self) -> None:
        by_popularity = [self.key_names[i] for i in self.popularity.tolist()]
        c = self.cache
        c.l3.set_many(dict.fromkeys(by_popularity, self.value))
        if c.ssd is not None:
            ssd_fits = min(len(by_popularity), int(self.cfg.ssd_capacity_gib * 2**30) // max(1, self.cfg.object_bytes))
            c.ssd.set_many(dict.fromkeys(by_popularity[:ssd_fits], self.value))
        l2_fits = min(len(by_popularity), self.cfg.l2_capacity_items)
        c.l2.set_many(dict.fromkeys(by_popularity[:l2_fits], self.value))
        for name in reversed(by_popularity[: min(len(by_popularity), self.cfg.l1_capacity_items)]):
            c.l1.set(name, self.value)

    def batch(self) -> None:
        """One ``tick_s`` of requests, then the hierarchy's own tick (cleanup, statistics)."""
        count = int(self.rng.poisson(self.cfg.requests_per_s * self.cfg.tick_s))
        if count:
            ranks = self.sampler.draw(self.rng, count)
            fresh = self.rng.random(count) < self.cfg.new_key_fraction
            hierarchy = self.cache.hierarchy
            for rank, new in zip(self.popularity[ranks].tolist(), fresh.tolist(), strict=True):
                key = f"new{self.new_keys}" if new else self.key_names[rank]
                self.new_keys += int(new)
                if hierarchy.get(key) is None:
                    hierarchy.set(key, self.value)
        self.cache.hierarchy.tick()

    def close(self) -> None:
        self.cache.hierarchy.emit_stats()
        with contextlib.suppress(Exception):  # a dead Redis cannot take the flush; the run is over
            self.cache.close()
        self._l3_dir.cleanup()
        if self._ssd_dir is not None:
            self._ssd_dir.cleanup()
