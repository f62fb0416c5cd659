"""Raft timing of real managers on an emulated WAN against the simulation (shortened, issue 15 item 6).

The full comparison (40 election trials and 10 formations per profile, lan to wan150) is
``python -m benchmarks.raft_timing_real_vs_sim`` with its table in
``benchmarks/RESULTS_managers.md``. Here one profile (wan30: 15 ms one way, gamma jitter, applied
per frame by the userspace link stage since this kernel has no ``tc netem``) and a few trials
check that the real measurement works end to end and gives physically possible numbers. Needs
root; with ``CI=true`` it fails rather than skips when the namespaces cannot be built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.manager.netns import RigUnavailable
from backends.manager.raft_timing import measure
from benchmarks.raft_timing_real_vs_sim import ks_distance, row
from sim.network import PROFILES
from sim.raft.experiments import election_times_after_crash, lan_settings
from tests.unavailable import unavailable

pytestmark = [pytest.mark.slow, pytest.mark.netns]


def test_ks_distance_is_zero_for_equal_samples_and_one_for_disjoint_ones() -> None:
    assert ks_distance([1, 2, 3], [3, 2, 1]) == 0.0
    assert ks_distance([1, 2], [5, 6]) == 1.0
    assert ks_distance([1, 2, 3, 4], [3, 4, 5, 6]) == 0.5


def test_real_election_and_formation_times_on_wan30(tmp_path: Path) -> None:
    profile = PROFILES["wan30"]
    try:
        real = measure(profile.rtt_ms, profile.jitter_ms, managers=5, election_trials=4, formation_trials=2,
                       work_dir=tmp_path / "timing", seed=7)
    except RigUnavailable as exc:
        unavailable(f"the namespace rig cannot be built: {exc}")
    sim = election_times_after_crash(lan_settings(5), profile, 20, 7)
    print(row("wan30", "election after SIGKILL", sim, real.election_ms), f"load average {real.load_average}")
    assert len(real.election_ms) == 4 and len(real.formation_ms) == 2
    # A follower campaigns only after an election timeout (150-300 ms) without heartbeats (every 50 ms),
    # and a vote round trip over wan30 takes ~30 ms: nothing faster is possible.
    assert all(100 <= t < 10_000 for t in real.election_ms), real.election_ms
    assert all(150 <= t < 20_000 for t in real.formation_ms), real.formation_ms
