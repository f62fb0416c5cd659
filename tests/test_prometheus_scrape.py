"""A real Prometheus server (Debian ``prometheus``) scrapes three real managers and a real cache.

Three ``novacron manager --metrics-port`` processes elect a leader, and a real three-tier cache
(L2 on a real redis-server) reports its statistics through ``backends.metrics_exporter``; a
Prometheus 2 server on a private loopback port, with its TSDB in a temporary directory, scrapes
them every second. Its HTTP API must then report every target up, one leader, one term, commit
indexes of at least 1, and the cache's hits per tier as the cache counted them. Every process is
killed in the finalizers, also on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.manager.localcluster import LocalCluster
from backends.metrics_exporter import TelemetryExporter
from backends.ports import free_ports
from novacron.events import InMemoryEventLog, Recorder
from tests.cache.redis_procs import RedisServer, running, state_dir
from tests.unavailable import require_binary

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


def prometheus_binary() -> str:
    return require_binary("prometheus", missing="the prometheus server (Debian package prometheus) is not installed")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    made = LocalCluster(tmp_path / "cluster", metrics=True)
    try:
        made.start_all()
        yield made
    finally:
        made.close()


@pytest.fixture
def real_cache(tmp_path: Path) -> Iterator[tuple[Any, TelemetryExporter]]:
    from backends.cache_runtime import build_real_cache

    with running(RedisServer(state_dir())) as redis:
        log = InMemoryEventLog()
        exporter = TelemetryExporter(Recorder(log, time.monotonic))
        cache = build_real_cache(redis_url=redis.url, l3_dir=tmp_path / "l3", l1_capacity_items=5, events=exporter)
        try:
            yield cache, exporter
        finally:
            exporter.close()
            cache.l2.clear()
            cache.close()


@pytest.fixture
def prometheus(tmp_path: Path, cluster: LocalCluster, real_cache: tuple[Any, TelemetryExporter]) -> Iterator[str]:
    binary = prometheus_binary()
    port, cache_port = free_ports(2)
    real_cache[1].serve("127.0.0.1", cache_port)
    targets = [f"{host}:{port}" for host, port in cluster.metrics_addresses.values()]
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n"
                      f"  - job_name: novacron-managers\n    static_configs:\n      - targets: {json.dumps(targets)}\n"
                      f"  - job_name: novacron-cache\n    static_configs:\n"
                      f"      - targets: [\"127.0.0.1:{cache_port}\"]\n")
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    state = os.environ.get("NOVACRON_TEST_STATE")
    pid_file = Path(state) / f"prometheus-{process.pid}.pid" if state else None
    if pid_file is not None:
        pid_file.write_text(f"{process.pid}\n")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        print((tmp_path / "prometheus.log").read_text(errors="replace")[-3000:])


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except OSError:
        return []
    return list(body["data"]["result"]) if body.get("status") == "success" else []


def wait_for(base: str, promql: str, count: int, timeout_s: float = 90.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = query(base, promql)
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"{promql}: {len(rows)} series after {timeout_s} s, wanted {count}: {rows}")


@pytest.mark.redis
def test_prometheus_scrapes_the_managers_and_the_cache(cluster: LocalCluster, prometheus: str,
                                                       real_cache: tuple[Any, TelemetryExporter]) -> None:
    cache, _exporter = real_cache
    cache.hierarchy.set_many({f"k{i}": b"x" * 100 for i in range(20)})
    for i in [*range(15, 20), *range(15)]:  # the last five written are in L1, the rest come from L2
        assert cache.hierarchy.get(f"k{i}") == b"x" * 100
    cache.hierarchy.emit_stats()
    leader = asyncio.run(cluster.wait_for_leader(timeout_s=60.0))
    # One manager's /metrics as prometheus_client itself parses it.
    host, port = cluster.metrics_addresses[leader["id"]]
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    assert families["novacron_raft_is_leader"].samples[0].value == 1.0
    # The server scraped all three: up, and the Raft view agrees with the managers' status.
    managers = {f"{h}:{p}" for h, p in cluster.metrics_addresses.values()}
    assert managers <= {row["metric"]["instance"] for row in wait_for(prometheus, "up == 1", 4)}
    # Scrapes from before the election show no leader: wait for a scrape after it.
    leaders = wait_for(prometheus, "novacron_raft_is_leader == 1", 1)
    assert [row["metric"]["manager"] for row in leaders] == [str(leader["id"])]
    terms = wait_for(prometheus, f"novacron_raft_term == {leader['term']}", 3)
    assert len(terms) == 3
    commits = wait_for(prometheus, "novacron_raft_commit_index >= 1", 3)
    assert len(commits) == 3
    # The cache's counters as it counted them (its own CacheStatsSampled, through the same reducer).
    rows = wait_for(prometheus, "novacron_cache_hits_total", 3)
    hits = {row["metric"]["tier"]: float(row["value"][1]) for row in rows}
    assert hits["l1"] == 5.0 and hits["l2"] == 15.0
