"""The federation group over the WAN: formation, failover, write latency and the return of
leadership to the preferred region (a command, not a pytest benchmark).

Run::

    nice -n 10 .venv/bin/python -m benchmarks.bench_federation --seeds 200

Every number is simulated time from the federation model (``sim.federation``: the federation
Raft group of three cluster representatives over the WAN model, timeouts tuned to the WAN by
``novacron.federation.config.wan_timing``), so it is exact and reproducible from the seeds and
does not depend on the machine's load. Four placements of the three representatives, measured
in the same run: three regions at 150 ms RTT each way round (the issue's case), three AWS
regions at their published RTTs (80-212 ms), three regions at 30 ms, and all three in one
region (the baseline).

- formation: from boot to the first leader's first commit;
- failover: the leader's representative crashes at 10 s; until a new leader commits in its term;
- write: a command proposed at the leader at 10 s until the leader sees it committed (a quorum
  round trip to the nearest other region);
- back to preferred: ``leader_preference`` names the first region; its representative is cut
  off at 10 s for 5 s; from the heal until it leads again (0 if it never lost leadership).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from novacron.federation.config import FederationSection
from novacron.seeding import RunSeeds
from sim.federation.component import assemble
from sim.federation.model import FederationModel
from sim.federation.vopr import SHAPE

BASE = FederationSection(enabled=True, vms=0, hosts_per_cluster=1, gossip_interval_s=5.0, ha_group_size=1)
PLACEMENTS: dict[str, FederationSection] = {
    "3 regions, 150 ms": dataclasses.replace(BASE, datacenters=("a", "b", "c"), wan="uniform",
                                             wan_uniform_rtt_ms=150.0),
    "3 AWS regions (aws-2017)": dataclasses.replace(BASE, datacenters=("us-east-1", "eu-west-1", "ap-northeast-1")),
    "3 regions, 30 ms": dataclasses.replace(BASE, datacenters=("a", "b", "c"), wan="uniform",
                                            wan_uniform_rtt_ms=30.0),
    "1 region (baseline)": dataclasses.replace(BASE, datacenters=("us-east-1",), clusters_per_datacenter=3),
}
EVENT_S = 10.0
STEP_S = 0.001


def build(section: FederationSection, seed: int) -> tuple[FederationModel, list[tuple[str, float]]]:
    events: list[tuple[str, float]] = []
    model: FederationModel

    def emit(cls: Any, **_fields: Any) -> None:
        events.append((cls.__name__, model.now_s))

    model = assemble(section, SHAPE, seed_rng=RunSeeds(seed).python, emit=emit)
    return model, events


def run_until(model: FederationModel, done: Callable[[], bool], limit_s: float) -> float | None:
    while model.now_s < limit_s:
        model.raft.run_until(model.now_s + STEP_S)
        if done():
            return model.now_s
    return None


def formation_s(section: FederationSection, seed: int) -> float:
    model, events = build(section, seed)
    model.raft.run_until(60.0, stop=lambda: any(name == "FederationFormed" for name, _ in events))
    return next(t for name, t in events if name == "FederationFormed")


def failover_s(section: FederationSection, seed: int) -> float | None:
    model, _ = build(section, seed)
    model.raft.run_until(EVENT_S)
    old = model.raft.leader()
    assert old is not None
    model.raft.crash(old.id)

    def committed() -> bool:
        leader = model.raft.leader()
        return leader is not None and leader.term > old.term and leader._committed_in_current_term()

    at = run_until(model, committed, EVENT_S + 60.0)
    return None if at is None else at - EVENT_S


def write_s(section: FederationSection, seed: int) -> float | None:
    model, _ = build(section, seed)
    model.raft.run_until(EVENT_S)
    leader = model.raft.leader()
    assert leader is not None
    placed = model.raft.propose(leader.id, b'{"id":"bench","op":"noop"}')
    assert placed is not None
    index = placed[0]
    at = run_until(model, lambda: leader.log.committed >= index, EVENT_S + 10.0)
    return None if at is None else at - EVENT_S


def back_to_preferred_s(section: FederationSection, seed: int) -> float | None:
    preferred = dataclasses.replace(section, leader_preference=(section.datacenters[0],))
    model, _ = build(preferred, seed)
    model.raft.run_until(EVENT_S)
    model.recovery.cut(0, 5.0)
    model.raft.run_until(EVENT_S + 5.0)

    def leads() -> bool:
        leader = model.raft.leader()
        return leader is not None and model.clusters[leader.id - 1].datacenter == 0

    at = run_until(model, leads, EVENT_S + 65.0)
    return None if at is None else at - EVENT_S - 5.0


def describe(values: list[float | None], unit_scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    got = np.array([v for v in values if v is not None]) * unit_scale
    missing = sum(1 for v in values if v is None)
    if not got.size:
        return "none"
    p50, p99 = np.percentile(got, [50, 99], method="nearest")
    text = " / ".join(fmt.format(v) for v in (p50, p99, got.max()))
    return text + (f" ({missing} of {len(values)} not within the limit)" if missing else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"seeds {seeds.start}..{seeds.stop - 1}; p50 / p99 / max of simulated time")
    print("| placement | heartbeat / election timeout (ms) | formation (s) | failover (ms) | write (ms) "
          "| back to preferred after heal (s) |")
    print("|---|---|---|---|---|---|")
    for label, section in PLACEMENTS.items():
        model, _ = build(section, 0)
        settings = model.raft.settings
        tick_ms = settings.tick_s * 1000
        timing = (f"{settings.raft.heartbeat_ticks * tick_ms:g} / {settings.raft.election_ticks_min * tick_ms:g}-"
                  f"{settings.raft.election_ticks_max * tick_ms:g}")
        formation = [formation_s(section, s) for s in seeds]
        failover = [failover_s(section, s) for s in seeds]
        writes = [write_s(section, s) for s in seeds]
        back = [back_to_preferred_s(section, s) for s in seeds] if len(section.datacenters) > 1 else []
        print(f"| {label} | {timing} | {describe(list(formation))} | {describe(failover, 1000, '{:.0f}')} "
              f"| {describe(writes, 1000, '{:.0f}')} | {describe(back) if back else 'n/a'} |", flush=True)
        assert max(formation) < 30.0, f"{label}: formation {max(formation):.2f} s is not < 30 s"


if __name__ == "__main__":
    main()
