"""The Raft-backed control plane: what freezing an idle, stable manager cluster saves.

Run (numbers go to benchmarks/RESULTS_integration.md)::

    PYTHONPATH=. /work/venv/bin/python -m novacron bench -k raft_control_plane

The built-in ``raft-control`` scenario (10 hosts, 150 VMs, 1 simulated hour, 5 managers ticking
every 10 ms over 30 ms RTT links, a leader crash at 7 s) is simulated twice in the same run:
with the cluster frozen while idle and stable (the shipped behaviour) and with every tick
simulated (the baseline). The ratio is the speed-up; both must place the same VMs.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from novacron.cluster.events import VMPlaced
from novacron.metrics import compute_metrics
from novacron.scenario import resolve_scenario
from sim import Simulation
from sim.allocation import AllocationStore
from sim.context import SimContext
from sim.control_plane import Placer
from sim.raft.control_plane import RaftControlPlane

MIN_SPEEDUP = 5.0


def _timed(freeze: bool) -> tuple[float, set[str], float]:
    scenario, _ = resolve_scenario("raft-control")

    def plane(ctx: SimContext, store: AllocationStore, placer: Placer | None) -> RaftControlPlane:
        return RaftControlPlane(ctx, store, placer, freeze_when_idle=freeze)

    started = time.perf_counter()
    log = Simulation(scenario, seed=scenario.seed, control_plane=plane).run().ctx.log
    wall_s = time.perf_counter() - started
    p99_ms = compute_metrics(log)["cluster.placement_latency_p99_ms"]
    return wall_s, {e.vm_id for e in log.of_type(VMPlaced)}, p99_ms


@pytest.mark.slow
def test_freezing_an_idle_cluster(benchmark: Any) -> None:
    ticking_s, ticking_vms, ticking_p99 = _timed(freeze=False)
    frozen: dict[str, Any] = {}

    def run() -> None:
        frozen["wall_s"], frozen["vms"], frozen["p99"] = _timed(freeze=True)

    benchmark.pedantic(run, rounds=3, iterations=1)
    speedup = ticking_s / frozen["wall_s"]
    benchmark.extra_info.update(ticking_wall_s=ticking_s, frozen_wall_s=frozen["wall_s"], speedup=speedup,
                                frozen_p99_ms=frozen["p99"], ticking_p99_ms=ticking_p99)
    print(f"\nraft-control 1 h: ticking {ticking_s:.2f} s, frozen {frozen['wall_s']:.2f} s, x{speedup:.1f}; "
          f"placement p99 {ticking_p99:.1f} / {frozen['p99']:.1f} ms")
    assert frozen["vms"] == ticking_vms
    assert speedup >= MIN_SPEEDUP
