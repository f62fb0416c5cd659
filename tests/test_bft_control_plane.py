"""``[control] critical_ops = "bft"``: evictions and VM destructions committed by PBFT, latency reported."""

from __future__ import annotations

import pytest

from novacron.bft.events import CriticalOpCommitted
from novacron.cluster.events import VMFailed, VMPlaced
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import loads_scenario
from sim.run import simulate
from tests.test_capacity_model import _scenario_text


def _text(critical_ops: str, *, network: str = "wan30", replicas: int = 4) -> str:
    base = _scenario_text(hosts=6, vms=40, mtbf_h=4.0, lifetime_mean_s=3000.0, overcommit=2.0)
    return base + f'[control]\ncritical_ops = "{critical_ops}"\nbft_replicas = {replicas}\nbft_network = "{network}"\n'


def _run(text: str, seed: int = 3) -> tuple[list[object], dict[str, float]]:
    ctx = simulate(loads_scenario(text, origin="test"), seed)
    return list(ctx.log), compute_metrics(ctx.log)


def test_evictions_and_destructions_commit_through_pbft_and_report_their_latency() -> None:
    events, metrics = _run(_text("bft"))
    ops = [e for e in events if isinstance(e, CriticalOpCommitted)]
    kinds = {e.op for e in ops}
    assert kinds == {"evict", "destroy"}, kinds
    assert metrics["control.critical_ops"] == len(ops)
    # wan30: request, pre-prepare, prepare, commit, reply -- 2.5 round trips of ~30 ms at least.
    assert 60.0 < metrics["control.critical_op_p50_ms"] <= metrics["control.critical_op_p99_ms"] < 1000.0
    # A restart elsewhere happens only after its eviction committed.
    failed_at = {e.vm_id: e.t_s for e in events if isinstance(e, VMFailed)}
    evicted_at = {e.subject.split()[1]: e.t_s for e in ops if e.op == "evict"}
    restarted = [e for e in events if isinstance(e, VMPlaced) and e.vm_id in failed_at and e.t_s > failed_at[e.vm_id]]
    assert restarted
    for placed in restarted:
        assert placed.vm_id in evicted_at and evicted_at[placed.vm_id] <= placed.t_s


def test_without_critical_ops_nothing_goes_through_pbft_and_the_run_is_unchanged_otherwise() -> None:
    events, metrics = _run(_text("none"))
    assert not any(isinstance(e, CriticalOpCommitted) for e in events)
    assert "control.critical_ops" not in metrics
    bft_events, _ = _run(_text("bft"))
    placed = sum(1 for e in events if isinstance(e, VMPlaced))
    assert sum(1 for e in bft_events if isinstance(e, VMPlaced)) == placed


def test_a_critical_ops_run_repeats_per_seed_and_seven_replicas_on_a_lan_are_faster() -> None:
    first, second = _run(_text("bft")), _run(_text("bft"))
    assert first[1] == second[1]
    _, lan7 = _run(_text("bft", network="lan", replicas=7))
    assert lan7["control.critical_op_p50_ms"] < first[1]["control.critical_op_p50_ms"]


def test_bad_control_settings_are_refused_naming_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match="allowed"):
        loads_scenario(_text("raft"), origin="test")
    with pytest.raises(ConfigError, match="bft_replicas"):
        loads_scenario(_text("bft", replicas=3), origin="test")
