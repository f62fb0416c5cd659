"""Raft timing, real managers against the simulation, per network profile (issue 15 item 6).

Run as root (it builds network namespaces)::

    .venv/bin/python -m benchmarks.raft_timing_real_vs_sim --profiles lan,wan30,wan80,wan150 \
        --election-trials 40 --formation-trials 10

For each profile of ``sim/network.py`` it runs ``sim.raft.experiments.election_times_after_crash``
and ``formation_times`` (``lan_settings``: the managers' default timeouts, PreVote and
CheckQuorum on) and the same experiments on real managers (``backends.manager.raft_timing``:
network namespaces, the profile's latency law applied per frame by the userspace link stage --
no ``tc netem`` on this kernel), and prints a Markdown table: p50, p90, p99 of each and the
two-sample Kolmogorov-Smirnov distance between them, with the load average.
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
from collections.abc import Sequence
from pathlib import Path

from backends.manager.raft_timing import TimingResult, measure
from sim.network import PROFILES
from sim.raft.experiments import election_times_after_crash, formation_times, lan_settings, percentile


def ks_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """sup |F_a(x) - F_b(x)| over the pooled sample (the two-sample Kolmogorov-Smirnov statistic)."""
    sa, sb = sorted(a), sorted(b)
    if not sa or not sb:
        return float("nan")
    return max(abs(bisect.bisect_right(sa, x) / len(sa) - bisect.bisect_right(sb, x) / len(sb)) for x in sa + sb)


def row(profile: str, experiment: str, sim: Sequence[float], real: Sequence[float]) -> str:
    cells = [f"{percentile(sim, p):.0f} / {percentile(real, p):.0f}" for p in (50, 90, 99)]
    p50_gap = percentile(real, 50) / percentile(sim, 50) - 1
    return (f"| {profile} | {experiment} | {len(sim)} / {len(real)} | {' | '.join(cells)} | {p50_gap:+.0%} | "
            f"{ks_distance(sim, real):.2f} |")


def compare(profiles: Sequence[str], managers: int, election_trials: int, formation_trials: int, seed: int,
            work_dir: Path) -> list[str]:
    lines = ["| profile | experiment | trials sim / real | p50 ms sim / real | p90 ms sim / real | "
             "p99 ms sim / real | real p50 vs sim | KS distance |", "|---|---|---|---|---|---|---|---|"]
    loads: list[str] = []
    vote_rounds: list[str] = []
    settings = lan_settings(managers)
    for name in profiles:
        profile = PROFILES[name]
        sim_elections = election_times_after_crash(settings, profile, election_trials, seed)
        sim_formation = [s * 1000 for s in formation_times(settings, profile, formation_trials, seed)]
        real: TimingResult = measure(profile.rtt_ms, profile.jitter_ms, managers=managers,
                                     election_trials=election_trials, formation_trials=formation_trials,
                                     work_dir=work_dir / name, seed=seed)
        loads.append(f"{name}: {real.load_average}")
        rounds = sorted(real.vote_round_ms)
        vote_rounds.append(f"{name}: p50 {percentile(rounds, 50):.0f} ms, p90 {percentile(rounds, 90):.0f} ms")
        lines.append(row(name, "election after SIGKILL", sim_elections, real.election_ms))
        lines.append(row(name, "formation", sim_formation, real.formation_ms))
        print(lines[-2], lines[-1], sep="\n", flush=True)
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
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in names if p not in PROFILES]
    if unknown:
        parser.exit(2, f"--profiles: unknown {unknown}; allowed: {sorted(PROFILES)}\n")
    with tempfile.TemporaryDirectory(prefix="novacron-raft-timing-") as tmp:
        lines = compare(names, args.managers, args.election_trials, args.formation_trials, args.seed, Path(tmp))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
