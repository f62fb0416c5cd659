"""Raft timing, real managers against the simulation, per network profile (issue 15 item 6).

Run as root (it builds network namespaces)::

    .venv/bin/python -m benchmarks.raft_timing_real_vs_sim --profiles lan,wan30,wan80,wan150 \
        --election-trials 100 --formation-trials 30 --partition-trials 100

For each profile of ``sim/network.py`` it runs the experiments of ``sim.raft.experiments``
(``election_times_after_crash``, ``formation_times``, ``partition_recovery_times``) with
``real_manager_settings`` -- the managers' default timeouts, PreVote and CheckQuorum, plus the
real managers' measured per-message, fsync and boot costs -- and the same experiments on real
managers (``backends.manager.raft_timing``: network namespaces, the profile's latency law applied
per frame by the userspace link stage -- no ``tc netem`` on this kernel), and prints a Markdown
table: p50, p90, p99 of each, the gaps at p50 and p99 against the goal (15 % and 25 %), the
two-sample Kolmogorov-Smirnov distance, and the p50 of the ideal model (``lan_settings``, no
costs) for reference; then the load average.
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from backends.manager.raft_timing import TimingResult, measure
from sim.network import PROFILES, LinkProfile
from sim.raft.cluster import ClusterSettings
from sim.raft.experiments import (
    election_times_after_crash,
    formation_times,
    lan_settings,
    partition_recovery_times,
    percentile,
    real_manager_settings,
)

P50_GOAL = 0.15
P99_GOAL = 0.25
HEADER = ["| profile | experiment | trials sim / real | p50 ms sim / real | p90 ms sim / real | p99 ms sim / real | "
          "p50 gap | p99 gap | KS distance | goal (p50 15 %, p99 25 %) | ideal model p50 ms |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
Experiment = Callable[[ClusterSettings, LinkProfile, int, int], list[float]]


def ks_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """sup |F_a(x) - F_b(x)| over the pooled sample (the two-sample Kolmogorov-Smirnov statistic)."""
    sa, sb = sorted(a), sorted(b)
    if not sa or not sb:
        return float("nan")
    return max(abs(bisect.bisect_right(sa, x) / len(sa) - bisect.bisect_right(sb, x) / len(sb)) for x in sa + sb)


def row(profile: str, experiment: str, sim: Sequence[float], real: Sequence[float],
        ideal: Sequence[float] = ()) -> str:
    if not sim or not real:
        return f"| {profile} | {experiment} | {len(sim)} / {len(real)} | not measured | | | | | | | |"
    cells = [f"{percentile(sim, p):.0f} / {percentile(real, p):.0f}" for p in (50, 90, 99)]
    p50_gap = percentile(real, 50) / percentile(sim, 50) - 1
    p99_gap = percentile(real, 99) / percentile(sim, 99) - 1
    verdict = "meets" if abs(p50_gap) <= P50_GOAL and abs(p99_gap) <= P99_GOAL else "misses"
    ideal_p50 = f"{percentile(ideal, 50):.0f}" if ideal else ""
    return (f"| {profile} | {experiment} | {len(sim)} / {len(real)} | {' | '.join(cells)} | {p50_gap:+.0%} | "
            f"{p99_gap:+.0%} | {ks_distance(sim, real):.2f} | {verdict} | {ideal_p50} |")


def formation_ms(settings: ClusterSettings, profile: LinkProfile, trials: int, seed: int) -> list[float]:
    return [s * 1000 for s in formation_times(settings, profile, trials, seed)]


EXPERIMENTS: tuple[tuple[str, Experiment, str], ...] = (
    ("election after SIGKILL", election_times_after_crash, "election_ms"),
    ("formation", formation_ms, "formation_ms"),
    ("partition recovery", partition_recovery_times, "partition_recovery_ms"),
)


def compare(profiles: Sequence[str], managers: int, trials: dict[str, int], sim_trials: int, seed: int,
            work_dir: Path) -> list[str]:
    lines = list(HEADER)
    loads: list[str] = []
    vote_rounds: list[str] = []
    for name in profiles:
        profile = PROFILES[name]
        real: TimingResult = measure(profile.rtt_ms, profile.jitter_ms, managers=managers,
                                     election_trials=trials["election_ms"], formation_trials=trials["formation_ms"],
                                     partition_trials=trials["partition_recovery_ms"], work_dir=work_dir / name,
                                     seed=seed)
        loads.append(f"{name}: {real.load_average}")
        rounds = sorted(real.vote_round_ms)
        vote_rounds.append(f"{name}: p50 {percentile(rounds, 50):.1f} ms, p90 {percentile(rounds, 90):.1f} ms")
        for label, experiment, field in EXPERIMENTS:
            if not trials[field]:
                continue
            sim = experiment(real_manager_settings(managers), profile, sim_trials, seed)
            ideal = experiment(lan_settings(managers), profile, sim_trials, seed)
            lines.append(row(name, label, sim, getattr(real, field), ideal))
            print(lines[-1], flush=True)
    lines.append("")
    lines.append("real elections, the new leader's own candidate -> leader time: " + "; ".join(vote_rounds))
    lines.append("")
    lines.append("load average (1/5/15 min) after each profile's real run: " + "; ".join(loads))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.raft_timing_real_vs_sim", description=__doc__)
    parser.add_argument("--profiles", default="lan,wan30,wan80,wan150")
    parser.add_argument("--managers", type=int, default=5)
    parser.add_argument("--election-trials", type=int, default=40)
    parser.add_argument("--formation-trials", type=int, default=10)
    parser.add_argument("--partition-trials", type=int, default=20)
    parser.add_argument("--sim-trials", type=int, default=300, help="trials per experiment in the simulation")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in names if p not in PROFILES]
    if unknown:
        parser.exit(2, f"--profiles: unknown {unknown}; allowed: {sorted(PROFILES)}\n")
    if min(args.election_trials, args.formation_trials, args.partition_trials) < 0 or args.sim_trials < 1:
        parser.exit(2, "trial counts must be >= 0 (--sim-trials >= 1)\n")
    trials = {"election_ms": args.election_trials, "formation_ms": args.formation_trials,
              "partition_recovery_ms": args.partition_trials}
    with tempfile.TemporaryDirectory(prefix="novacron-raft-timing-") as tmp:
        lines = compare(names, args.managers, trials, args.sim_trials, args.seed, Path(tmp))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
