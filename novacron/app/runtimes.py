"""The runtime seam: who runs a scenario -- the SimPy model or the real parts.

Theory of operation
-------------------
A runtime takes a validated scenario, a seed and a run directory, runs the scenario and returns
the run's result; both end with ``novacron.app.finish.record_run`` (the same metrics from the
events, the same targets and verdict object, the same ``events.parquet``/``summary.json``/
``report.html``). The composition root (``novacron.app.cli``) picks one by name
(``--runtime sim|real``) with ``select_runtime`` and calls it; nothing downstream asks which
runtime ran. Each implementation imports its runtime lazily, so ``import novacron`` stays free
of SimPy, libvirt and Redis.

- ``SimRuntime``: ``sim.run.run_scenario`` (deterministic: the same seed gives the same log).
- ``RealRuntime``: ``backends.realrun.run_real`` -- libvirt hosts, real guests, real manager
  processes, a real Redis, faults injected for real, the schedule on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from novacron.app.finish import RunResult
from novacron.scenario import Scenario

RUNTIMES = ("sim", "real")


class Runtime(Protocol):
    @property
    def name(self) -> str:
        """``sim`` or ``real``: the run's ``runtime`` in ``summary.json``."""
        ...

    def check(self, scenario: Scenario) -> None:
        """Raise ``ConfigError`` (one line) if this runtime cannot run the scenario."""
        ...

    def describe(self, scenario: Scenario) -> str:
        """The tail of the first line a run prints (what runs where)."""
        ...

    def run(self, scenario: Scenario, seed: int, out_dir: Path, scenario_text: str, *,
            progress: bool, process_exits_after: bool = False) -> RunResult:
        """``process_exits_after``: the process ends once the run is written (the ``novacron``
        command), so memory the run no longer needs may be left to the exit."""
        ...


@dataclass(frozen=True)
class SimRuntime:
    name: str = "sim"

    def check(self, scenario: Scenario) -> None:
        from sim.workloads.trace_workload import check_trace

        check_trace(scenario)

    def describe(self, scenario: Scenario) -> str:
        return f"{scenario.duration_s:g} s simulated"

    def run(self, scenario: Scenario, seed: int, out_dir: Path, scenario_text: str, *,
            progress: bool, process_exits_after: bool = False) -> RunResult:
        from sim.run import run_scenario

        return run_scenario(scenario, seed, out_dir, scenario_text, progress=progress,
                            release_model=not process_exits_after)


@dataclass(frozen=True)
class RealRuntime:
    hosts: tuple[str, ...] = ()
    """libvirt URIs from ``--hosts`` (empty: the scenario's ``[runtime] hosts``, else the lab's)."""
    name: str = "real"

    def check(self, scenario: Scenario) -> None:
        from backends.realrun.support import check_supported

        check_supported(scenario, self.hosts)

    def describe(self, scenario: Scenario) -> str:
        wall_s = scenario.duration_s / scenario.runtime.time_scale
        return f"real hosts, {wall_s:g} s of wall-clock time"

    def run(self, scenario: Scenario, seed: int, out_dir: Path, scenario_text: str, *,
            progress: bool, process_exits_after: bool = False) -> RunResult:
        from backends.realrun import run_real

        return run_real(scenario, seed, out_dir, scenario_text, hosts=self.hosts)


def select_runtime(name: str, hosts: tuple[str, ...] = ()) -> Runtime:
    if name == "real":
        return RealRuntime(hosts=hosts)
    if hosts:
        raise ValueError(f"--hosts {' '.join(hosts)}: hosts are for --runtime real; allowed with --runtime sim: none")
    return SimRuntime()
