"""The peer baseline for the capacity model: the same workload written as per-entity SimPy
simulators are written, one SimPy process per VM.

Theory of operation
-------------------
CloudSim-style and most SimPy cluster simulators give every VM its own process: it waits for its
arrival, asks for a host, then wakes at every demand update to draw its CPU use and add it to its
host's total, and finally releases its host when its lifetime ends. A sampler process turns the
totals into one utilisation sample per host per update, which is what NovaCron's vectorised
model (``sim.cluster_model``) records as ``HostUtilisationSampled``.

The workload is NovaCron's own stream (``sim.workloads.synthetic_workload`` with the scenario's
settings), the demand law is the model's (diurnal sinusoid x gamma noise x bursts, clipped to the
VM's cores), and placement is first fit over the hosts' reserved cores and memory -- cheaper than
the scheduler the full composition runs (scoring a window of hosts), so the measured ratio
favours the baseline. What the baseline leaves out (and the NovaCron run includes): the
scheduler's scoring, the rebalancer, faults, the cache, contention and writing the event log (the
baseline counts its samples and keeps the peak; it stores none).
A wall- and CPU-time ratio against it is therefore a lower bound on the vectorised model's
advantage for equal work.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import simpy

from novacron.scenario import Scenario
from sim.cluster_model import DAY_S, NOISE_SHAPE
from sim.workloads.spec import VMSpec
from sim.workloads.synthetic import synthetic_workload


@dataclass
class BaselineResult:
    vms_placed: int
    vms_rejected: int
    samples: int
    """Per-host utilisation samples recorded (one per host per demand update)."""
    vm_wakeups: int
    peak_host_cpu_pct: float
    vm_hours: float


class PerVMSimulation:
    """One SimPy process per VM; see the module docstring."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        c, w = scenario.cluster, scenario.workload
        self.scenario = scenario
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.free_cores = [c.host_cpu_cores * c.cpu_overcommit] * c.hosts
        self.free_memory_gib = [c.host_memory_gib] * c.hosts
        self.physical_cores = float(c.host_cpu_cores)
        self.demand_cores = [0.0] * c.hosts
        self._first_open = 0
        self.update_s = w.demand_update_s
        self.burst_factor = w.burst_factor
        self.samples = 0
        self.placed = self.rejected = self.wakeups = 0
        self.vm_seconds = 0.0
        self.peak_pct = 0.0
        self.workload = synthetic_workload(scenario, np.random.default_rng(seed))

    def run(self) -> BaselineResult:
        self.env.process(self._arrivals())
        self.env.process(self._sampler())
        self.env.run(until=self.scenario.duration_s)
        return BaselineResult(vms_placed=self.placed, vms_rejected=self.rejected, samples=self.samples,
                              vm_wakeups=self.wakeups, peak_host_cpu_pct=self.peak_pct,
                              vm_hours=self.vm_seconds / 3600.0)

    def _arrivals(self) -> Generator[simpy.Event, None, None]:
        for spec in self.workload:
            if spec.arrival_s >= self.scenario.duration_s:
                return
            yield self.env.timeout(max(spec.arrival_s - self.env.now, 0.0))
            self.env.process(self._vm(spec))

    def _first_fit(self, spec: VMSpec) -> int | None:
        """The lowest-numbered host with room, scanning from the first host that is not full (a
        cursor kept as hosts fill and free), so a 10,000-host run does not rescan full hosts."""
        hosts = len(self.free_cores)
        while self._first_open < hosts and self.free_cores[self._first_open] < 1.0:
            self._first_open += 1
        for host in range(self._first_open, hosts):
            if self.free_cores[host] >= spec.cpu_cores and self.free_memory_gib[host] >= spec.memory_gib:
                return host
        return None

    def _vm(self, spec: VMSpec) -> Generator[simpy.Event, None, None]:
        host = self._first_fit(spec)
        if host is None:
            self.rejected += 1
            return
        self.placed += 1
        self.free_cores[host] -= spec.cpu_cores
        self.free_memory_gib[host] -= spec.memory_gib
        started = self.env.now
        end_s = min(started + (spec.lifetime_s if spec.lifetime_s is not None else math.inf),
                    self.scenario.duration_s)
        while True:
            next_update = (math.floor(self.env.now / self.update_s) + 1) * self.update_s
            if next_update >= end_s:
                break
            yield self.env.timeout(next_update - self.env.now)
            self.wakeups += 1
            self.demand_cores[host] += self._demand(spec) * spec.cpu_cores
        if end_s < self.scenario.duration_s:
            yield self.env.timeout(end_s - self.env.now)
        self.free_cores[host] += spec.cpu_cores
        self.free_memory_gib[host] += spec.memory_gib
        self._first_open = min(self._first_open, host)
        self.vm_seconds += end_s - started

    def _demand(self, spec: VMSpec) -> float:
        day = math.sin(2 * math.pi * (self.env.now / DAY_S + spec.diurnal_phase_days))
        level = spec.mean_cpu_utilisation * (1.0 + spec.diurnal_amplitude * day)
        level *= self.rng.gammavariate(NOISE_SHAPE, 1.0 / NOISE_SHAPE)
        if self.rng.random() < spec.burst_probability:
            level *= self.burst_factor
        return min(max(level, 0.0), 1.0)

    def _sampler(self) -> Generator[simpy.Event, None, None]:
        # A hair after each update, so every VM of that instant has added its demand first.
        yield self.env.timeout(self.update_s + 1e-6)
        while True:
            for cores in self.demand_cores:
                self.peak_pct = max(self.peak_pct, min(cores / self.physical_cores, 1.0) * 100.0)
            self.samples += len(self.demand_cores)
            self.demand_cores = [0.0] * len(self.demand_cores)
            yield self.env.timeout(self.update_s)


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.per_vm_baseline SCENARIO.toml --seed N --out DIR``: writes DIR/baseline.json."""
    import argparse
    import dataclasses
    import json
    from pathlib import Path

    from novacron.scenario import load_scenario

    parser = argparse.ArgumentParser(prog="python -m benchmarks.per_vm_baseline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = PerVMSimulation(load_scenario(args.scenario), args.seed).run()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "baseline.json").write_text(json.dumps(dataclasses.asdict(result), indent=1))


if __name__ == "__main__":
    main()
