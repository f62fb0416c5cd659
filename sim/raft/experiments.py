"""Timing experiments on simulated Raft clusters: elections after a leader crash, formation.

Theory of operation
-------------------
Figure 16 of the Raft paper (section 9.3) measures "the time to detect and replace a crashed
leader" in a five-server cluster whose broadcast time is about 15 ms, for election timeouts
drawn from 150-150, 150-151, 150-155, 150-175, 150-200 and 150-300 ms. The paper's finding: a
little randomness (5 ms) already removes most split votes, and with 150-300 ms nearly every
election finishes well under half a second, while without randomness (150-150) elections drag
on through repeated split votes (a long tail beyond 10 s).

``election_times_after_crash`` reproduces the procedure: one cluster is kept running; in each
trial the leader is crashed at a random point of its heartbeat cycle (a uniform wait after the
previous trial's election), the time until another server becomes leader is recorded, and the
crashed server is restarted (it keeps its disk). The paper's experiment ran the original Raft
algorithm, so ``fig16_settings`` turns PreVote and CheckQuorum off and uses 1 ms ticks (the
timeout ranges differ by 1 ms); ``lan_settings`` is the NovaCron default (10 ms ticks, 15-30
ticks, PreVote and CheckQuorum on).

``formation_times`` boots fresh clusters and records when every manager knows a committed entry;
``partition_recovery_times`` isolates the leader until the others have replaced it, heals, and
records how long the old leader takes to follow the new one with everything it had committed.
Each has a twin on real managers (``backends.manager.raft_timing``) with the same definition.

``real_manager_settings`` adds what the real managers cost and an ideal cluster does not: the
handling of each message, the fsync before a vote or an acknowledgement leaves, and the boot
phase of a fresh cluster (``ClusterSettings``), with the measured values and their sources.
Between election trials the cluster is first made whole (everyone follows the leader and knows
all it committed), as the real experiment waits for, so each trial starts from a settled cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from random import Random

import numpy as np

from novacron.raft.node import LEADER, RaftConfig, RaftNode
from novacron.seeding import RunSeeds
from sim.network import PROFILES, LinkProfile, NetworkModel
from sim.raft.cluster import BootPhase, ClusterSettings, RaftCluster

FIG16_RANGES_MS: tuple[tuple[int, int], ...] = ((150, 150), (150, 151), (150, 155), (150, 175), (150, 200),
                                                (150, 300))
ELECTION_GIVE_UP_S = 60.0
PARTITION_HOLD_S = 0.5
"""How long an isolated leader stays cut off after the others have elected a new one."""


def fig16_settings(low_ms: int, high_ms: int) -> ClusterSettings:
    raft = RaftConfig(node_id=1, election_ticks_min=low_ms, election_ticks_max=high_ms, heartbeat_ticks=50,
                      pre_vote=False, check_quorum=False)
    return ClusterSettings(managers=5, tick_s=0.001, raft=raft)


def lan_settings(managers: int = 5) -> ClusterSettings:
    return ClusterSettings(managers=managers)


REAL_MANAGERS_HANDLING_S = 0.0026
"""The real managers' measured cost per message beyond the link's latency (2026-12-01, 2 loaded
cores, load average about 3): their vote round (candidate ``TermStarted`` to ``LeaderElected``)
took 5.9 ms at the median on lan (0.2 ms RTT), i.e. two messages of about 2.6 ms each after the
fsyncs -- event-loop wake-ups, encoding and decoding, and the link-stage process that every frame
passes through in the lab. Load-dependent: 7-12 ms per round at load average 13."""
REAL_MANAGERS_PERSIST_S = 0.0003
"""The real managers' measured fsync: ``SQLiteLogStore.save`` of a vote or of one entry,
``synchronous=FULL`` in WAL mode, 200 times each on this machine's ext4 disk: p50 0.24 ms, p90
0.4-0.5 ms, p99 3-4 ms; a whole vote Ready cycle of ``ManagerRuntime._drive`` (step, save, frame,
events) 0.24 ms p50."""
REAL_MANAGERS_BOOT = BootPhase(start_min_s=0.005, start_max_s=0.05)
"""Released together at a start barrier (imports done), five real managers answered their
first status 10-55 ms later (20 ms polls); their peer links retry every 20 ms doubling to 1 s
(``backends.manager.peers.PeerLink``)."""


def real_manager_settings(managers: int = 5) -> ClusterSettings:
    """``lan_settings`` with the real managers' measured costs: per-message handling, the fsync
    before votes and acknowledgements leave, and the boot phase of a fresh cluster."""
    return replace(lan_settings(managers), handling_s=REAL_MANAGERS_HANDLING_S,
                   persist_s=REAL_MANAGERS_PERSIST_S, boot=REAL_MANAGERS_BOOT)


def _leader_term(cluster: RaftCluster) -> tuple[int, int]:
    node = cluster.leader()
    return (node.id, node.term) if node is not None else (0, 0)


def _settled_leader(cluster: RaftCluster, rng: Random, heartbeat_s: float) -> RaftNode | None:
    """Run until the cluster is whole and 2-3 heartbeat intervals more (a random point of the
    leader's heartbeat cycle), as the real experiments do; the leader then, if any."""
    cluster.run_until(cluster.now_s + ELECTION_GIVE_UP_S, stop=lambda: _whole(cluster))
    cluster.run_until(cluster.now_s + 2 * heartbeat_s + rng.random() * heartbeat_s)
    return cluster.leader()


def election_times_after_crash(settings: ClusterSettings, profile: LinkProfile, trials: int, seed: int,
                               progress: Callable[[int], object] | None = None) -> list[float]:
    """Milliseconds from a leader crash until a new leader exists, ``trials`` times."""
    seeds = RunSeeds(seed)
    rng = seeds.python("experiment.crash-times")
    cluster = RaftCluster(settings, NetworkModel(profile, seeds.python("experiment.network")),
                          seeds.python("experiment.cluster"))
    cluster.run_until(ELECTION_GIVE_UP_S, stop=lambda: cluster.leader() is not None)
    heartbeat_s = settings.raft.heartbeat_ticks * settings.tick_s
    times_ms: list[float] = []
    for trial in range(trials):
        old = _settled_leader(cluster, rng, heartbeat_s)
        if old is None:
            cluster.run_until(cluster.now_s + ELECTION_GIVE_UP_S, stop=lambda: cluster.leader() is not None)
            continue
        old_id, old_term = old.id, old.term
        crashed_at = cluster.now_s
        cluster.crash(old_id)

        def replaced(old_term: int = old_term) -> bool:
            node = cluster.leader()
            return node is not None and node.term > old_term and node.role == LEADER
        cluster.run_until(crashed_at + ELECTION_GIVE_UP_S, stop=replaced)
        times_ms.append((cluster.now_s - crashed_at) * 1000)
        cluster.restart(old_id)
        if progress is not None:
            progress(trial)
    return times_ms


def partition_recovery_times(settings: ClusterSettings, profile: LinkProfile, trials: int, seed: int,
                             hold_s: float = PARTITION_HOLD_S) -> list[float]:
    """Milliseconds from healing an isolated leader until the cluster is whole again, ``trials`` times.

    Each trial, on one cluster that is whole (every manager follows one leader and knows all it
    committed) and has run 2-3 heartbeat intervals more: every message to and from the leader
    is dropped when sent (it is isolated; messages already in flight still arrive) until the
    others have elected a new leader and ``hold_s`` plus 0-1 heartbeat interval more has passed
    (a heal at a random point of the new leader's heartbeat cycle); then the link heals. The time
    runs from the heal until the isolated manager follows the new leader and knows every entry
    the new leader had committed at the heal. ``backends.manager.raft_timing`` measures the same
    on real managers.
    """
    seeds = RunSeeds(seed)
    rng = seeds.python("experiment.partition-times")
    cluster = RaftCluster(settings, NetworkModel(profile, seeds.python("experiment.network")),
                          seeds.python("experiment.cluster"))
    heartbeat_s = settings.raft.heartbeat_ticks * settings.tick_s
    times_ms: list[float] = []
    for _ in range(trials):
        old = _settled_leader(cluster, rng, heartbeat_s)
        if old is None:
            continue
        old_id, old_term = old.id, old.term
        cluster.network.isolate(old_id, cluster.managers)

        def replaced(old_id: int = old_id, old_term: int = old_term) -> bool:
            return any(m.node is not None and m.node_id != old_id and m.node.role == LEADER and m.node.term > old_term
                       for m in cluster.managers.values())
        cluster.run_until(cluster.now_s + ELECTION_GIVE_UP_S, stop=replaced)
        cluster.run_until(cluster.now_s + hold_s + rng.random() * heartbeat_s)
        new = cluster.leader()
        if new is None or new.id == old_id:
            cluster.network.heal()
            continue
        new_id, committed = new.id, new.log.committed
        healed_at = cluster.now_s
        cluster.network.heal()

        def caught_up(old_id: int = old_id, new_id: int = new_id, committed: int = committed) -> bool:
            node = cluster.managers[old_id].node
            return node is not None and node.leader == new_id and node.log.committed >= committed
        cluster.run_until(healed_at + ELECTION_GIVE_UP_S, stop=caught_up)
        times_ms.append((cluster.now_s - healed_at) * 1000)
    return times_ms


def formation_times(settings: ClusterSettings, profile: LinkProfile, trials: int, seed: int) -> list[float]:
    """Seconds from boot until every manager knows a committed entry, one fresh cluster per trial."""
    times_s = []
    for trial in range(trials):
        seeds = RunSeeds(seed + trial)
        cluster = RaftCluster(settings, NetworkModel(profile, seeds.python("formation.network")),
                              seeds.python("formation.cluster"))

        cluster.run_until(ELECTION_GIVE_UP_S * 2, stop=lambda c=cluster: _formed(c))  # type: ignore[misc]
        times_s.append(cluster.now_s)
    return times_s


def _formed(cluster: RaftCluster) -> bool:
    return (len(cluster.managers) == cluster.settings.managers
            and all(m.node is not None and m.node.log.committed >= 1 for m in cluster.managers.values()))


def _whole(cluster: RaftCluster) -> bool:
    """Every manager up and following one leader, and knowing everything it committed: what the
    real experiment waits for before the next crash (``backends.manager.raft_timing.whole``; a
    leader crashed before its first entry reached everyone leaves voters that cannot elect the
    ones who lack it, and the next election is not the one being measured)."""
    leader = cluster.leader()
    if leader is None:
        return False
    return all(m.node is not None and m.node.leader == leader.id and m.node.log.committed >= leader.log.committed
               for m in cluster.managers.values())


def fig16(trials: int, seed: int, ranges: Sequence[tuple[int, int]] = FIG16_RANGES_MS,
          progress: Callable[[int], object] | None = None) -> dict[str, list[float]]:
    """Election times (ms) after a leader crash per timeout range, as in Figure 16 of the paper."""
    results: dict[str, list[float]] = {}
    for low, high in ranges:
        settings = fig16_settings(low, high)
        results[f"{low}-{high}ms"] = election_times_after_crash(settings, PROFILES["fig16"], trials,
                                                                seed, progress)
    return results


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (numpy's ``method="nearest"``, the one the house uses); NaN for no values."""
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(values, pct, method="nearest"))


def plot_fig16(results: dict[str, list[float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, times in results.items():
        ordered = sorted(times)
        ax.step(ordered, [(i + 1) / len(ordered) * 100 for i in range(len(ordered))], where="post", label=label)
    ax.set(xscale="log", xlabel="time without leader after the leader crashed (ms)",
           ylabel="cumulative percent of trials", title="Raft paper Figure 16, in simulation (5 managers)")
    ax.set_xlim(100, max(10_000, max(max(t) for t in results.values()) * 1.1))
    ax.axvline(500, color="grey", ls=":", lw=1)
    ax.legend(title="election timeout", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarise(results: dict[str, list[float]]) -> list[str]:
    lines = [f"{'timeouts':>12} {'trials':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>9} {'<500ms':>7}"]
    for label, times in results.items():
        within = sum(t < 500 for t in times) / max(1, len(times)) * 100
        lines.append(f"{label:>12} {len(times):>6} {percentile(times, 50):8.1f} {percentile(times, 90):8.1f} "
                     f"{percentile(times, 99):8.1f} {max(times):9.1f} {within:6.1f}%")
    return lines


