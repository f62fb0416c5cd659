"""Telemetry: the event-log reducer, the OpenMetrics text it becomes, and a real run exported and
backfilled into a real Prometheus TSDB (Debian ``prometheus``: ``promtool``)."""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from novacron.app.cli import main
from novacron.app.export_metrics import READ_TYPES, write_openmetrics
from novacron.cache.events import CacheStatsSampled
from novacron.cluster.events import HostUtilisationSampled, VMPlaced
from novacron.migration.events import MigrationRoundCompleted
from novacron.raft.events import LeaderElected, TermStarted
from novacron.telemetry import FAMILIES, Sample, TelemetryReducer
from tests.test_bad_input import assert_one_line_exit_2
from tests.unavailable import require_binary


def host_sample(t_s: float, host: str, cpu_pct: float) -> HostUtilisationSampled:
    return HostUtilisationSampled(t_s=t_s, seq=0, source=host, host_id=host, cpu_pct=cpu_pct, memory_pct=50.0,
                                  vms_running=3, cpu_demand_pct=cpu_pct * 1.5, cpu_ready_pct=10.0,
                                  cpu_ready_max_pct=12.0, powered_on=True)


def cache_sample(t_s: float, hits: int) -> CacheStatsSampled:
    return CacheStatsSampled(t_s=t_s, seq=0, source="cache", cache_tier="L1", interval_s=30.0, cache_hits=hits,
                             cache_misses=1, cache_failures=0, cache_skipped=0, cache_promotions=0,
                             cache_demotions=0, cache_expirations=0, cache_latency_mean_ms=None,
                             cache_latency_p99_ms=None)


def values(samples: list[Sample], family: str) -> list[tuple[float, float]]:
    return [(s.t_s, s.value) for s in samples if s.family == family]


def test_gauges_are_values_and_counters_running_totals() -> None:
    reducer = TelemetryReducer()
    events = [host_sample(300.0, "h1", 40.0), cache_sample(30.0, 5), cache_sample(60.0, 7),
              MigrationRoundCompleted(t_s=70.0, seq=0, source="h1", migration_id="m", vm_id="vm-1", round_index=0,
                                      round_bytes=1000, round_duration_ms=5.0, remaining_bytes=10,
                                      dirty_rate_pages_s=1.0, throughput_bytes_s=1e6),
              MigrationRoundCompleted(t_s=71.0, seq=0, source="h1", migration_id="m", vm_id="vm-1", round_index=1,
                                      round_bytes=500, round_duration_ms=5.0, remaining_bytes=0,
                                      dirty_rate_pages_s=1.0, throughput_bytes_s=1e6),
              TermStarted(t_s=1.0, seq=0, source="m1", manager_id=1, term=4),
              LeaderElected(t_s=1.2, seq=0, source="m1", manager_id=1, term=4, leaderless_ms=300.0),
              VMPlaced(t_s=2.0, seq=0, source="s", vm_id="vm-1", host_id="h1", cpu_cores=2, memory_gib=4.0,
                       decision_ms=0.1)]
    samples = list(reducer.reduce(events))
    assert values(samples, "novacron_host_cpu_percent") == [(300.0, 40.0)]
    assert values(samples, "novacron_host_cpu_ready_percent") == [(300.0, 10.0)]  # contention
    assert values(samples, "novacron_cache_hits") == [(30.0, 5.0), (60.0, 12.0)]
    assert values(samples, "novacron_migration_bytes") == [(70.0, 1000.0), (71.0, 1500.0)]
    assert values(samples, "novacron_raft_term") == [(1.0, 4.0)]
    assert values(samples, "novacron_raft_leader_elections") == [(1.2, 1.0)]
    assert {s.labels for s in samples if s.family == "novacron_migration_bytes"} == {(("vm", "vm-1"),)}
    assert all(s.family in FAMILIES for s in samples)


def test_the_export_reads_every_event_type_the_reducer_handles() -> None:
    handled = {cls.__name__ for cls in TelemetryReducer()._handlers}
    assert set(READ_TYPES) == handled


def test_openmetrics_text_groups_families_and_parses() -> None:
    samples = [Sample("novacron_cache_hits", (("tier", 'L"1'),), 30.0, 5.0),
               Sample("novacron_host_cpu_percent", (("host", "h2"),), 10.0, 1.0),
               Sample("novacron_cache_hits", (("tier", 'L"1'),), 60.0, 12.0),
               Sample("novacron_host_cpu_percent", (("host", "h1"),), 10.0, 2.0),
               Sample("novacron_host_cpu_percent", (("host", "h1"),), 10.0, 3.0),  # same time: the later wins
               Sample("novacron_migration_downtime_ms", (("vm", "v"),), 5.0, math.inf)]
    out = io.StringIO()
    assert write_openmetrics(samples, out, start_unix_s=1000.0) == 5
    text = out.getvalue()
    assert text.endswith("# EOF\n")
    assert 'novacron_cache_hits_total{tier="L\\"1"} 12.0 1060.0' in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["novacron_cache_hits"].type == "counter"
    cpu = [(s.labels["host"], s.value) for s in families["novacron_host_cpu_percent"].samples]
    assert cpu == [("h1", 3.0), ("h2", 1.0)]


def test_export_metrics_of_a_simulated_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", "--duration", "20m", "--out", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["export-metrics", str(run_dir), "--start-unix-s", "1700000000"]) == 0
    text = (run_dir / "metrics.openmetrics.txt").read_text()
    names = {f.name for f in text_string_to_metric_families(text)}
    for wanted in ("novacron_host_cpu_percent", "novacron_host_cpu_ready_percent", "novacron_cluster_hosts_up",
                   "novacron_migration_bytes", "novacron_raft_term", "novacron_cache_hits"):
        assert wanted in names
    promtool = require_binary("promtool", missing="promtool (Debian package prometheus) is not installed")
    # A real Prometheus TSDB accepts the file: the simulated run as blocks a server can load.
    result = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                             str(run_dir / "metrics.openmetrics.txt"), str(tmp_path / "tsdb")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "tsdb").iterdir())


def test_export_metrics_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["export-metrics", str(tmp_path)], capsys, "no events.parquet")
    (tmp_path / "events.parquet").write_bytes(b"not parquet")
    assert_one_line_exit_2(["export-metrics", str(tmp_path), "--start-unix-s", "nan"], capsys, "--start-unix-s")
    assert_one_line_exit_2(["export-metrics", str(tmp_path)], capsys, "not a NovaCron event log")
    assert not list(tmp_path.glob("*.partial"))


def test_the_exporter_passes_events_on_and_exposes_the_latest_values() -> None:
    from prometheus_client import generate_latest

    from backends.metrics_exporter import TelemetryExporter
    from novacron.events import InMemoryEventLog, Recorder

    log = InMemoryEventLog()
    exporter = TelemetryExporter(Recorder(log, lambda: 5.0))
    for hits in (3, 4):
        exporter.emit(CacheStatsSampled, source="cache", cache_tier="l1", interval_s=30.0, cache_hits=hits,
                      cache_misses=0, cache_failures=0, cache_skipped=0, cache_promotions=0, cache_demotions=0,
                      cache_expirations=0, cache_latency_mean_ms=None, cache_latency_p99_ms=None)
    assert len(log.of_type(CacheStatsSampled)) == 2  # the component's own log is untouched
    text = generate_latest(exporter.registry).decode()
    assert 'novacron_cache_hits_total{tier="l1"} 7.0' in text
