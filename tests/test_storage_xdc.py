"""Cross-datacenter replication of the storage pool: sync/async write latency, data at risk, RPO."""

from __future__ import annotations

import dataclasses
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, loads_scenario, resolve_scenario, scenario_targets
from novacron.slo import TargetOverride, Verdict, apply_overrides, evaluate
from novacron.storage.metrics import replication_table
from novacron.storage.xdc import MIB, at_risk, overload_lag_s, overload_rpo_s, share_bytes_s, sync_latency_floor_ms
from sim.run import simulate
from sim.storage_xdc import ACK_BYTES, XdcLink, assess_mode, replicate, write_times


def link(*, rate_mib_s: float, rtt_ms: float = 80.0, jitter_ms: float = 0.0, share: float = 0.2) -> XdcLink:
    return XdcLink(rtt_ms=rtt_ms, jitter_ms=jitter_ms, bandwidth_mbit_s=1000.0, wan_share=share, local_write_ms=1.0,
                   object_bytes=MIB, write_bytes_s=rate_mib_s * MIB)


def test_a_sync_write_on_an_idle_link_takes_the_local_write_a_round_trip_and_its_transfer() -> None:
    xdc = link(rate_mib_s=1.0)
    (sync,) = replicate(xdc, [10.0], "sync", Random(1))
    (async_,) = replicate(xdc, [10.0], "async", Random(1))
    floor_ms = sync_latency_floor_ms(local_write_ms=1.0, rtt_ms=80.0, size_bytes=MIB, bandwidth_mbit_s=1000.0,
                                     wan_share=0.2)
    ack_ms = 1000 * ACK_BYTES / share_bytes_s(1000.0, 0.2)
    assert 1000 * (sync.acked_s - sync.written_s) == pytest.approx(floor_ms + ack_ms)
    assert 1000 * (async_.acked_s - async_.written_s) == pytest.approx(1.0)
    assert floor_ms == pytest.approx(1.0 + 80.0 + 1000 * MIB / 25e6)


def test_async_loses_what_the_stream_had_not_shipped_and_its_rpo_follows_the_overload_lag() -> None:
    """Writing at 30 MiB/s into a 23.8 MiB/s stream for 300 s: the newest write's lag grows to
    (30 / 23.8 - 1) * 300 = 77 s, and the stream has shipped only the first 300 * 23.8 / 30 s of
    writes, so the oldest write lost with the primary is 300 * (1 - 23.8 / 30) = 62 s old."""
    xdc = link(rate_mib_s=30.0)
    times = write_times(xdc, 0.0, 300.0, Random(3))
    result = assess_mode(xdc, times, "async", 4, lost_at_s=300.0, primary_lost=True)
    share = share_bytes_s(1000.0, 0.2)
    lag_s = overload_lag_s(write_bytes_s=30.0 * MIB, share_bytes_per_s=share, overload_s=300.0)
    rpo_s = overload_rpo_s(write_bytes_s=30.0 * MIB, share_bytes_per_s=share, overload_s=300.0)
    assert result.rpo_s == pytest.approx(rpo_s, rel=0.1)
    assert result.max_lag_s == pytest.approx(lag_s, rel=0.1)
    assert result.at_risk_mib == pytest.approx(lag_s * share / MIB, rel=0.1)  # the backlog
    sync = assess_mode(xdc, times, "sync", 4, lost_at_s=300.0, primary_lost=True)
    assert sync.at_risk_objects == 0 and sync.write_p99_ms > 1000 * lag_s / 2  # sync pays the backlog
    replica_lost = assess_mode(xdc, times, "async", 4, lost_at_s=300.0, primary_lost=False)
    assert replica_lost.at_risk_objects == 0  # the primary still holds every write


@settings(max_examples=40, deadline=None)
@given(rate_mib_s=st.floats(0.5, 40.0), rtt_ms=st.floats(1.0, 250.0), jitter_pct=st.floats(0.0, 0.5),
       share=st.floats(0.05, 1.0), loss_at_s=st.floats(1.0, 60.0), seed=st.integers(0, 2**16))
def test_sync_never_loses_acknowledged_data_and_async_rpo_is_bounded_by_the_lag(
        rate_mib_s: float, rtt_ms: float, jitter_pct: float, share: float, loss_at_s: float, seed: int) -> None:
    xdc = link(rate_mib_s=rate_mib_s, rtt_ms=rtt_ms, jitter_ms=rtt_ms * jitter_pct / 2, share=share)
    times = write_times(xdc, 0.0, loss_at_s, Random(seed))
    sync = replicate(xdc, times, "sync", Random(seed + 1))
    assert at_risk(sync, loss_at_s, primary_lost=True).objects == 0, f"seed {seed}"
    asynchronous = replicate(xdc, times, "async", Random(seed + 1))
    risk = at_risk(asynchronous, loss_at_s, primary_lost=True)
    max_lag_s = max((w.lag_s for w in asynchronous), default=0.0)
    max_one_way_s = max((w.landed_s - w.shipped_s for w in asynchronous), default=0.0)
    assert risk.rpo_s <= max_lag_s + max_one_way_s + 1e-9, f"seed {seed}"
    assert risk.objects <= len(asynchronous)


@pytest.fixture(scope="module")
def outage() -> tuple[Scenario, dict[str, float]]:
    scenario, _ = resolve_scenario("storage-xdc-outage")
    ctx = simulate(scenario, scenario.seed)
    return scenario, compute_metrics(list(ctx.log))


def test_the_outage_scenario_reports_both_modes_and_passes_its_targets(
        outage: tuple[Scenario, dict[str, float]]) -> None:
    scenario, metrics = outage
    assert metrics["storage.xdc_sync_at_risk_mib"] == 0 and metrics["storage.xdc_sync_rpo_s"] == 0
    assert metrics["storage.xdc_async_at_risk_objects"] > 0 and metrics["storage.xdc_async_rpo_s"] > 0
    assert metrics["storage.xdc_sync_write_p50_ms"] > 87.8 > metrics["storage.xdc_async_write_p99_ms"]
    assert metrics["storage.xdc_rpo_s"] == metrics["storage.xdc_async_rpo_s"]  # the scenario's mode
    rows = replication_table(metrics).splitlines()
    assert [r.split()[0] for r in rows[2:]] == ["sync", "async"]
    verdicts = {r.target.metric: r.verdict for r in evaluate(metrics, scenario_targets(scenario)[0]).results}
    assert verdicts["storage.xdc_rpo_s"] is Verdict.PASS and verdicts["storage.xdc_write_p99_ms"] is Verdict.PASS


def test_a_tighter_rpo_target_fails(outage: tuple[Scenario, dict[str, float]]) -> None:
    scenario, metrics = outage
    tighter = apply_overrides(scenario_targets(scenario)[0],
                              [TargetOverride(metric="storage.xdc_rpo_s", threshold=0.01)])
    result = next(r for r in evaluate(metrics, tighter).results if r.target.metric == "storage.xdc_rpo_s")
    assert result.verdict is Verdict.FAIL and result.measured == metrics["storage.xdc_async_rpo_s"]


def test_the_outage_scenario_is_deterministic(outage: tuple[Scenario, dict[str, float]]) -> None:
    scenario, metrics = outage
    again = compute_metrics(list(simulate(scenario, scenario.seed).log))
    assert {k: v for k, v in again.items() if k.startswith("storage.xdc")} == \
        {k: v for k, v in metrics.items() if k.startswith("storage.xdc")}


def test_replication_without_a_federation_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"storage.xdc_replication = 'sync' needs \[federation\]"):
        loads_scenario('[storage]\nenabled = true\nxdc_replication = "sync"\n', origin="t")
    text = '[storage]\nxdc_replication = "sync"\nxdc_replica_datacenter = "mars"\n[federation]\nenabled = true\n'
    with pytest.raises(ConfigError, match=r"storage\.xdc_replica_datacenter = 'mars' is not allowed"):
        loads_scenario(text, origin="t")


def test_no_replication_means_no_event() -> None:
    scenario, _ = resolve_scenario("storage-10")
    events = list(simulate(dataclasses.replace(scenario, duration_s=60.0), 1).log)
    assert not [e for e in events if type(e).__name__ == "StorageReplicationAssessed"]


def test_without_writes_the_write_latency_target_does_not_apply_and_the_rpo_target_still_does() -> None:
    """``xdc_write_mib_s = 0`` is allowed; with no write there is no write latency to judge, so its
    target is not applicable rather than 'not measured' (which would fail every such run)."""
    scenario, _ = resolve_scenario("storage-xdc-outage")
    silent = dataclasses.replace(scenario, storage=dataclasses.replace(scenario.storage, xdc_write_mib_s=0.0))
    applicable = {t.metric for t in scenario_targets(scenario)[0]}
    assert {"storage.xdc_rpo_s", "storage.xdc_write_p99_ms"} <= applicable
    silent_targets, not_applicable = scenario_targets(silent)
    assert "storage.xdc_rpo_s" in {t.metric for t in silent_targets}
    assert "storage.xdc_write_p99_ms" not in {t.metric for t in silent_targets}
    assert "cross-datacenter replicated write p99" in not_applicable
