"""Migration benchmarks: planner predictions per second; simulated migrations per second with 10
running at once (SimPy + the core controller + the QEMU model), against 1 at a time as baseline.

Run: PYTHONPATH=. /work/venv/bin/python -m pytest benchmarks/bench_migration.py --benchmark-enable \
     -p no:cacheprovider -o testpaths=benchmarks -o python_files='bench_*.py'
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest
import simpy

from novacron.events import InMemoryEventLog, Recorder
from novacron.migration.controller import ControllerPolicy, MigrationController, MigrationRequest, drive_step
from novacron.migration.events import MigrationFinished
from novacron.migration.planner import LinkEstimate, VMMigrationProfile, plan_migration
from novacron.migration.protocol import GIB, MIB, PAGE_SIZE_BYTES, MigrationCommand, PowerState
from sim.migration.hypervisor import SimHypervisor
from sim.migration.qemu_model import GuestProfile, StreamCalibration

PREDICTIONS = 1_000


def random_profiles(n: int, seed: int = 1) -> list[VMMigrationProfile]:
    rng = np.random.default_rng(seed)
    memory = rng.choice([2, 4, 8, 16], size=n) * GIB
    wws = (rng.uniform(0.02, 0.25, size=n) * memory).astype(np.int64) // PAGE_SIZE_BYTES * PAGE_SIZE_BYTES
    rates = np.exp(rng.uniform(np.log(500), np.log(150_000), size=n))
    return [VMMigrationProfile(vm_id=f"vm{i}", memory_bytes=int(m), wws_bytes=int(w), dirty_rate_pages_s=float(r),
                               nonzero_bytes=int(0.6 * m)) for i, (m, w, r) in enumerate(zip(memory, wws, rates,
                                                                                             strict=True))]


@pytest.mark.benchmark(group="migration-planner")
def test_planner_predictions_per_second(benchmark: pytest.FixtureRequest) -> None:
    profiles = random_profiles(PREDICTIONS)
    link = LinkEstimate(bandwidth_bytes_s=437 * MIB, stop_copy_bytes_s=1100 * MIB)

    def predict_all() -> int:
        return sum(plan_migration(p, link, 500.0).predicted_rounds for p in profiles)

    assert benchmark(predict_all) > 0  # type: ignore[operator]
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["predictions_per_s"] = PREDICTIONS / stats.mean  # type: ignore[attr-defined]


def migrate(env: simpy.Environment, hv: SimHypervisor, ctl: MigrationController) -> Generator[simpy.Event, None, None]:
    ctl.admitted(env.now)
    commands: list[MigrationCommand] = ctl.start(env.now)
    while True:
        commands = drive_step(ctl, hv, commands, env.now)
        if ctl.done:
            return
        yield env.timeout(hv.advance(ctl.vm_id, ctl.poll_interval_s))


def run_wave(concurrent: int, total: int) -> int:
    """``total`` migrations of 4-16 GiB VMs between 10 hosts (10 GbE), ``concurrent`` at a time."""
    env = simpy.Environment()
    log = InMemoryEventLog()
    recorder = Recorder(log, lambda: float(env.now))
    hosts = [f"h{i}" for i in range(10)]
    hv = SimHypervisor(nic_bytes_s={h: 1.25e9 for h in hosts},
                       calibration=StreamCalibration(stream_cap_bytes_s=1100 * MIB, stop_copy_bytes_s=1100 * MIB))
    policy = ControllerPolicy(permit_postcopy=True, permit_auto_converge=True)
    link = LinkEstimate(bandwidth_bytes_s=437 * MIB, stop_copy_bytes_s=1100 * MIB)
    profiles = random_profiles(total, seed=2)
    for i, p in enumerate(profiles):
        hv.guests[p.vm_id] = GuestProfile(memory_bytes=p.memory_bytes, resident_bytes=p.payload_bytes - p.wws_bytes,
                                          wws_bytes=p.wws_bytes, dirty_rate_pages_s=p.dirty_rate_pages_s)
        hv.location[p.vm_id], hv.power[p.vm_id] = hosts[i % 10], PowerState.RUNNING

    def wave(batch: list[VMMigrationProfile]) -> Generator[simpy.Event, None, None]:
        procs = []
        for i, p in enumerate(batch):
            src = hv.location[p.vm_id]
            dst = hosts[(hosts.index(src) + 1 + i % 9) % 10]
            request = MigrationRequest(migration_id=f"m-{p.vm_id}", vm=p, source_host_id=src, destination_host_id=dst)
            ctl = MigrationController(request, plan_migration(p, link, policy.downtime_ms), policy, recorder)
            procs.append(env.process(migrate(env, hv, ctl)))
        yield env.all_of(procs)

    def all_waves() -> Generator[simpy.Event, None, None]:
        for start in range(0, total, concurrent):
            yield env.process(wave(profiles[start:start + concurrent]))

    env.process(all_waves())
    env.run()
    return len(log.of_type(MigrationFinished))


@pytest.mark.benchmark(group="migration-sim")
@pytest.mark.parametrize("concurrent", [1, 10])
def test_simulated_migrations_per_second(benchmark: pytest.FixtureRequest, concurrent: int) -> None:
    total = 50
    assert benchmark(run_wave, concurrent, total) == total  # type: ignore[operator]
    if concurrent > 1:
        benchmark.extra_info["baseline"] = "test_simulated_migrations_per_second[1]"  # type: ignore[attr-defined]
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["migrations_per_s"] = total / stats.mean  # type: ignore[attr-defined]
