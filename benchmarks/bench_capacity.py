"""Capacity model performance: events per second against raw SimPy, and the scale-1000 budget.

Run (numbers go to benchmarks/RESULTS_capacity.md):

    PYTHONPATH=. /work/venv/bin/python -m pytest benchmarks/bench_capacity.py --benchmark-enable \\
        -p no:cacheprovider -o testpaths=benchmarks -o python_files='bench_*.py' -s

1. ``test_model_vs_raw_simpy``: the scale-1000 model (1000 hosts, 50,000 VMs, 24 h, 5-minute
   demand updates, first-fit placement, faults on) simulated in-process, its SimPy events per
   second compared with the ceiling of SimPy itself measured in the same run: a bare loop of
   timeouts over the same number of processes and the same number of SimPy events.
2. ``test_scale_1000_budget``: ``novacron run scale-1000`` end to end (simulate,
   metrics, Parquet log, summary, report) in a subprocess; wall time and the child's peak RSS
   (``resource.getrusage(RUSAGE_CHILDREN)``). Budget: 120 s and 4 GiB on the 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import simpy

from novacron.scenario import resolve_scenario
from sim.run import simulate

REPO = Path(__file__).resolve().parents[1]
WALL_BUDGET_S = 120.0
RSS_BUDGET_GIB = 4.0


def _raw_simpy_events_per_s(processes: int, events: int) -> float:
    """Ceiling: ``processes`` processes each looping on ``timeout``, ``events`` timeouts in all."""
    env = simpy.Environment()
    per_process = max(events // processes, 1)

    def loop() -> Generator[simpy.Event, None, None]:
        for _ in range(per_process):
            yield env.timeout(1.0)

    for _ in range(processes):
        env.process(loop())
    started = time.perf_counter()
    env.run()
    return per_process * processes / (time.perf_counter() - started)


def test_model_vs_raw_simpy(benchmark: Any) -> None:
    scenario, _ = resolve_scenario("scale-1000")
    outcome: dict[str, Any] = {}

    def run_model() -> None:
        started = time.perf_counter()
        ctx = simulate(scenario, scenario.seed)
        outcome["wall_s"] = time.perf_counter() - started
        outcome["simpy_events"] = next(ctx.env._eid)  # SimPy's count of scheduled events
        outcome["log_events"] = len(ctx.log)

    benchmark.pedantic(run_model, rounds=1, iterations=1)
    processes = 6  # arrivals, demand updates, host crashes, rack failures, manager crashes, partitions
    raw_per_s = _raw_simpy_events_per_s(processes, outcome["simpy_events"])
    model_per_s = outcome["simpy_events"] / outcome["wall_s"]
    info = {
        "model_wall_s": round(outcome["wall_s"], 2),
        "model_simpy_events": outcome["simpy_events"],
        "model_log_events": outcome["log_events"],
        "model_simpy_events_per_s": round(model_per_s),
        "model_log_events_per_s": round(outcome["log_events"] / outcome["wall_s"]),
        "raw_simpy_events_per_s": round(raw_per_s),
        "model_over_raw": round(model_per_s / raw_per_s, 3),
        # Tracked by novacron bench: time per event relative to raw SimPy's (lower is better).
        "baseline_ratio": round(raw_per_s / model_per_s, 3),
        "baseline": "raw SimPy, same process count and event count",
    }
    benchmark.extra_info.update(info)
    print("\n" + json.dumps(info, indent=1))
    assert outcome["log_events"] > 300_000


@pytest.mark.slow
def test_scale_1000_budget(benchmark: Any, tmp_path: Path) -> None:
    script = (
        "import resource, subprocess, sys, time\n"
        "started = time.perf_counter()\n"
        "code = subprocess.call([sys.executable, '-m', 'novacron', 'run', 'scale-1000',\n"
        f"                       '--out', {str(tmp_path / 'run')!r}, '--no-progress'],\n"
        "                      stdout=subprocess.DEVNULL)\n"
        "wall = time.perf_counter() - started\n"
        "print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    measured: dict[str, float] = {}

    def run_cli() -> None:
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        code, wall_s, rss_kib = out.stdout.split()
        assert int(code) == 0, out.stderr
        measured.update(wall_s=float(wall_s), rss_gib=int(rss_kib) / 1024 / 1024)

    benchmark.pedantic(run_cli, rounds=1, iterations=1)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    info = {"wall_s": round(measured["wall_s"], 2), "peak_rss_gib": round(measured["rss_gib"], 3),
            "events": summary["events"], "parquet_mib": round((tmp_path / "run" / "events.parquet").stat().st_size
                                                              / 2**20, 2),
            **{k: round(v, 4) for k, v in summary["metrics"].items() if k.startswith("cluster.")}}
    benchmark.extra_info.update(info)
    print("\n" + json.dumps(info, indent=1))
    assert measured["wall_s"] <= WALL_BUDGET_S
    assert measured["rss_gib"] <= RSS_BUDGET_GIB
