"""``novacron calibrate-raft``: Raft timing of real managers against the simulation, per network profile.

Theory of operation
-------------------
The simulation's Raft timing is worth what its agreement with real managers is worth, so the same
three experiments run on both sides for each network profile:

- in the simulation, ``sim.raft.experiments`` (``election_times_after_crash``, ``formation_times``,
  ``partition_recovery_times``) with ``real_manager_settings`` -- the managers' default timeouts,
  PreVote and CheckQuorum, plus their measured per-message, fsync and boot costs -- and, for
  reference, the ideal model (``lan_settings``: no costs);
- on real ``novacron manager`` processes (``backends.manager.raft_timing``: one network namespace
  per manager, every frame passed through a userspace link stage that applies the profile's
  latency law and message loss -- the stand-in for ``tc netem``, which this kernel lacks).

A profile is a name of ``sim.network.PROFILES`` (``lan``, ``wan30``, ``wan80``, ``wan150``), optionally
with message loss: ``wan30/loss=0.02`` drops 2 % of the messages on every link, in the simulation
(``LinkProfile.with_faults``) and in the link stages (each frame dropped with that probability;
frames are Raft messages, so both sides lose whole messages above TCP).

For each profile and experiment the comparison gives p50, p90 and p99 of both samples, the gaps
real/sim - 1 at p50 and p99 against the goal (15 % and 25 %, issue 15 item 6), the two-sample
Kolmogorov-Smirnov distance, and a verdict. ``write_outputs`` writes ``raft_timing.md`` (the
table), ``rows.json`` (the same, for CI), ``samples.csv`` (every trial of both sides) and
``raft_timing.png`` (the distributions side by side).
"""

from __future__ import annotations

import bisect
import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
RealMeasure = Callable[..., Any]


def parse_profile(spec: str) -> LinkProfile:
    """``"wan30"`` or ``"wan30/loss=0.02"`` -> the profile; raises ``ValueError`` naming what is allowed."""
    name, _, options = spec.strip().partition("/")
    if name not in PROFILES:
        raise ValueError(f"--profiles {spec!r}: unknown profile {name!r}; allowed: "
                         f"{', '.join(sorted(PROFILES))}, each optionally with /loss=P (e.g. wan30/loss=0.02)")
    profile = PROFILES[name]
    if not options:
        return profile
    key, eq, value = options.partition("=")
    try:
        loss = float(value) if key == "loss" and eq else None
    except ValueError:
        loss = None
    if loss is None or not 0.0 <= loss < 1.0:
        raise ValueError(f"--profiles {spec!r}: {options!r} is not allowed; allowed: loss=P with 0 <= P < 1 "
                         "(the probability that a message is dropped)")
    return profile.with_faults(loss=loss)


def profile_label(profile: LinkProfile) -> str:
    return profile.name if not profile.loss else f"{profile.name} loss {profile.loss:.0%}"


def ks_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """sup |F_a(x) - F_b(x)| over the pooled sample (the two-sample Kolmogorov-Smirnov statistic)."""
    sa, sb = sorted(a), sorted(b)
    if not sa or not sb:
        return float("nan")
    return max(abs(bisect.bisect_right(sa, x) / len(sa) - bisect.bisect_right(sb, x) / len(sb)) for x in sa + sb)


@dataclass
class Row:
    profile: str
    experiment: str
    sim_ms: list[float]
    real_ms: list[float]
    ideal_ms: list[float] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        return bool(self.sim_ms) and bool(self.real_ms)

    def gap(self, q: float) -> float:
        return percentile(self.real_ms, q) / percentile(self.sim_ms, q) - 1

    @property
    def meets(self) -> bool:
        return self.measured and abs(self.gap(50)) <= P50_GOAL and abs(self.gap(99)) <= P99_GOAL

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"profile": self.profile, "experiment": self.experiment,
                               "trials_sim": len(self.sim_ms), "trials_real": len(self.real_ms)}
        if self.measured:
            for q in (50, 90, 99):
                out[f"p{q}_sim_ms"] = round(percentile(self.sim_ms, q), 2)
                out[f"p{q}_real_ms"] = round(percentile(self.real_ms, q), 2)
            out.update(p50_gap=round(self.gap(50), 4), p99_gap=round(self.gap(99), 4),
                       ks_distance=round(ks_distance(self.sim_ms, self.real_ms), 4))
        out["verdict"] = "meets" if self.meets else ("misses" if self.measured else "not measured")
        return out

    def markdown(self) -> str:
        if not self.measured:
            return (f"| {self.profile} | {self.experiment} | {len(self.sim_ms)} / {len(self.real_ms)} | not measured "
                    "| | | | | | | |")
        cells = [f"{percentile(self.sim_ms, q):.0f} / {percentile(self.real_ms, q):.0f}" for q in (50, 90, 99)]
        ideal = f"{percentile(self.ideal_ms, 50):.0f}" if self.ideal_ms else ""
        return (f"| {self.profile} | {self.experiment} | {len(self.sim_ms)} / {len(self.real_ms)} | "
                f"{' | '.join(cells)} | {self.gap(50):+.0%} | {self.gap(99):+.0%} | "
                f"{ks_distance(self.sim_ms, self.real_ms):.2f} | {'meets' if self.meets else 'misses'} | {ideal} |")


def row(profile: str, experiment: str, sim: Sequence[float], real: Sequence[float],
        ideal: Sequence[float] = ()) -> str:
    """One Markdown row (kept for callers that have the samples at hand)."""
    return Row(profile, experiment, list(sim), list(real), list(ideal)).markdown()


def formation_ms(settings: ClusterSettings, profile: LinkProfile, trials: int, seed: int) -> list[float]:
    return [s * 1000 for s in formation_times(settings, profile, trials, seed)]


EXPERIMENTS: tuple[tuple[str, Experiment, str], ...] = (
    ("election after SIGKILL", election_times_after_crash, "election_ms"),
    ("formation", formation_ms, "formation_ms"),
    ("partition recovery", partition_recovery_times, "partition_recovery_ms"),
)
TRIAL_FIELDS = tuple(f for _, _, f in EXPERIMENTS)


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    vote_rounds: list[str] = field(default_factory=list)
    load_averages: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [*HEADER, *(r.markdown() for r in self.rows), "",
                 "real elections, the new leader's own candidate -> leader time: " + "; ".join(self.vote_rounds), "",
                 "load average (1/5/15 min) after each profile's real run: " + "; ".join(self.load_averages)]
        return "\n".join(lines)


def compare(profiles: Sequence[LinkProfile], managers: int, trials: dict[str, int], sim_trials: int, seed: int,
            work_dir: Path, *, measure_real: RealMeasure | None = None,
            progress: Callable[[str], None] = print) -> Comparison:
    """Both sides of every experiment with trials for every profile; ``measure_real`` is
    ``backends.manager.raft_timing.measure`` (root: network namespaces) unless a test passes another."""
    if measure_real is None:
        from backends.manager.raft_timing import measure
        measure_real = measure
    result = Comparison()
    for profile in profiles:
        label = profile_label(profile)
        progress(f"{label}: real managers ({managers}), "
                 + ", ".join(f"{trials[f]} {f.removesuffix('_ms').replace('_', ' ')}" for f in TRIAL_FIELDS))
        real = measure_real(profile.rtt_ms, profile.jitter_ms, loss=profile.loss, managers=managers,
                            election_trials=trials["election_ms"], formation_trials=trials["formation_ms"],
                            partition_trials=trials["partition_recovery_ms"],
                            work_dir=work_dir / label.replace(" ", "-").replace("%", "pct"), seed=seed)
        result.load_averages.append(f"{label}: {real.load_average}")
        rounds = sorted(real.vote_round_ms)
        if rounds:
            result.vote_rounds.append(f"{label}: p50 {percentile(rounds, 50):.1f} ms, "
                                      f"p90 {percentile(rounds, 90):.1f} ms")
        for name, experiment, trial_field in EXPERIMENTS:
            if not trials[trial_field]:
                continue
            sim = experiment(real_manager_settings(managers), profile, sim_trials, seed)
            ideal = experiment(lan_settings(managers), profile, sim_trials, seed)
            result.rows.append(Row(label, name, sim, list(getattr(real, trial_field)), ideal))
            progress(result.rows[-1].markdown())
    return result


def write_outputs(out_dir: Path, comparison: Comparison, command: str) -> list[Path]:
    """``raft_timing.md``, ``rows.json``, ``samples.csv`` and ``raft_timing.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "raft_timing.md"
    table.write_text(f"```\n{command}\n```\n\n{comparison.markdown()}\n")
    rows = out_dir / "rows.json"
    rows.write_text(json.dumps([r.as_dict() for r in comparison.rows], indent=1) + "\n")
    samples = out_dir / "samples.csv"
    with samples.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["profile", "experiment", "side", "trial", "ms"])
        for r in comparison.rows:
            for side, values in (("sim", r.sim_ms), ("real", r.real_ms), ("ideal model", r.ideal_ms)):
                writer.writerows([r.profile, r.experiment, side, i, round(v, 3)] for i, v in enumerate(values))
    plot = out_dir / "raft_timing.png"
    _plot(comparison, plot)
    return [table, rows, samples, plot]


def _plot(comparison: Comparison, path: Path) -> None:
    """One panel per experiment: the empirical CDFs of real and simulated times, one colour per profile."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, _, _ in EXPERIMENTS if any(r.experiment == name and r.measured for r in comparison.rows)]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        for i, r in enumerate(x for x in comparison.rows if x.experiment == name and x.measured):
            for values, style, side in ((r.real_ms, "-", "real"), (r.sim_ms, "--", "sim")):
                xs = sorted(values)
                ax.step(xs, [(k + 1) / len(xs) for k in range(len(xs))], style, color=f"C{i}", where="post",
                        label=f"{r.profile} {side}")
        ax.set(xscale="log", xlabel="ms", ylabel="fraction of trials", title=name)
        ax.legend(fontsize=7)
    fig.suptitle("Raft timing: real managers (solid) against the simulation (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
