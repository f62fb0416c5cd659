"""Jepsen-style: real managers in network namespaces, a nemesis, 6 clients, a checked history.

``backends.manager.jepsen.run_jepsen`` does the work (see its docstring): managers in separate
network namespaces joined by veth pairs through a bridge; the nemesis partitions (nftables, also
one-way cuts aimed at the leader), SIGKILLs and restarts, SIGSTOPs/SIGCONTs managers and turns on
delay/jitter/reordering/duplication/frame loss in the userspace link stages (no ``tc netem`` on
this kernel) plus nftables packet loss; then every manager is killed and restarted and every key
read back. The history is checked with the core's linearizability checker under a budget.

CI mode: ``NOVACRON_JEPSEN_S`` seconds per cluster size (default 20). The nemesis seed is
printed; replay a failure with ``NOVACRON_JEPSEN_SEED=<seed>`` (or ``python -m
backends.manager.jepsen run --seed <seed> ...``). The long run (60+ s) is in
``benchmarks/RESULTS_managers.md``. A planted stale-read bug (managers answering reads from
their own state with no ReadIndex) must be caught, so the checker is shown able to fail. Needs
root; with ``CI=true`` the test fails rather than skips when the namespaces cannot be built.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from backends.manager.jepsen import JepsenReport, run_jepsen
from novacron.raft.linearizability import GET, PUT
from tests.unavailable import rig_needed

pytestmark = [pytest.mark.slow, pytest.mark.netns]


def jepsen(size: int, tmp_path: Path, duration_s: float, planted_bug: str | None = None) -> JepsenReport:
    seed = int(os.environ.get("NOVACRON_JEPSEN_SEED") or random.SystemRandom().randrange(1 << 31))
    print(f"nemesis seed {seed} (replay: NOVACRON_JEPSEN_SEED={seed})")
    with rig_needed("the namespace rig"):
        report = run_jepsen(size, duration_s, seed, tmp_path / "jepsen", planted_bug=planted_bug)
    print("\n".join(report.nemesis))
    return report


@pytest.mark.parametrize("size", [3, 5])
def test_managers_stay_linearizable_and_lose_no_acknowledged_write_under_the_nemesis(
        size: int, tmp_path: Path) -> None:
    report = jepsen(size, tmp_path, float(os.environ.get("NOVACRON_JEPSEN_S", "20")))
    assert not report.crashes, report.crashes
    assert report.verdict != "violation", f"not linearizable at key {report.violation_key}: {report.nemesis[-1]}"
    assert not report.lost_acknowledged, f"acknowledged writes missing after the restart: {report.lost_acknowledged}"
    progress = report.outcomes.get(f"{PUT} ok", 0) > 100 and report.outcomes.get(f"{GET} ok", 0) > 50
    assert progress, f"too little progress to mean anything: {report.summary()}"
    assert len(report.nemesis) >= 3


def test_the_checker_catches_a_planted_stale_read(tmp_path: Path) -> None:
    report = jepsen(3, tmp_path, 12.0, planted_bug="local-reads")
    assert report.verdict == "violation", f"a replica answering reads locally went unnoticed: {report.summary()}"
