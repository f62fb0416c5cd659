"""A pytest plugin so users' own tests can assert on a run's metrics by name.

Installed with NovaCron (entry point ``pytest11``), it provides the ``novacron_run`` fixture::

    def test_my_cluster_meets_targets(novacron_run):
        run = novacron_run("scenarios/my-cluster.toml", seed=3)
        assert run.metrics["cluster.peak_cpu_pct"] < 75
        assert run.verdict.passed()          # pass / fail / not measured, as `novacron check` sees it
        assert run.missed_targets == []      # required targets that failed or were not measured

It is one of the two composition roots (with ``novacron/app/cli.py``): the only modules under
``novacron/`` that may import a runtime, and only inside the function that needs it, so loading
the plugin into any pytest session costs nothing (``tests/test_core_purity.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from novacron.slo import RunVerdict


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    metrics: dict[str, float]
    missed_targets: list[str]
    verdict: RunVerdict

    def metric(self, name: str) -> float:
        """A metric by name; a missing name lists the ones the run produced."""
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"the run produced no metric {name!r}; it has: {', '.join(sorted(self.metrics))}") from None


RunFactory = Callable[..., RunOutcome]


@pytest.fixture
def novacron_run(tmp_path: Path) -> RunFactory:
    """Run a scenario (file path or built-in name) in simulation and return its metrics."""

    def run(scenario: str | None = None, *, seed: int | None = None) -> RunOutcome:
        from novacron.scenario import resolve_scenario
        from sim.run import run_scenario

        parsed, text = resolve_scenario(scenario)
        used_seed = parsed.seed if seed is None else seed
        out = tmp_path / f"{parsed.name}-seed{used_seed}"
        result = run_scenario(parsed, used_seed, out, text, report=False)
        return RunOutcome(out, dict(result.summary["metrics"]), list(result.summary["missed_targets"]),
                          result.verdict)

    return run
