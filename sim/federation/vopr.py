"""Deterministic simulation testing of the federation group (a vopr for ``sim.federation``).

Theory of operation
-------------------
One seed is one experiment: ``FederationPlan.draw(seed)`` picks 3 to 5 datacenters from the
AWS table (1 or 2 clusters each), a replication mode, a policy and a workload, and a fault
schedule of datacenter partitions -- some shorter than the failure detector's timeout (nothing
moves), some longer (the federation declares the datacenter lost, evacuates it, and fences the
copies when it comes back) -- plus, for some seeds, one datacenter lost for good, and up to
six cross-datacenter moves (1 GiB disks, block-live or cold) that race the faults. Faults stop
at ``fault_window_s``; then the network heals and the federation has ``calm_s`` to settle.

Checks:

- after every step of every representative, Raft's safety properties and the replicated state
  compared across members at each index (``novacron.raft.invariants.SafetyChecker``);
- at the end, the federation's own: every VM runs in at most one live cluster (a split brain
  was resolved by fencing), every VM that runs is where the committed state records it, every
  request was answered (placed or rejected), and no VM the committed state records in a lost
  datacenter is still waiting for evacuation while the others have room.

``run_seed(seed)`` replays a seed exactly; ``plant="unrecorded-restart"`` runs an evacuation
that restarts VMs without recording the move in the federation log (a real split-brain bug),
and any name of ``sim.raft.planted_bugs.PLANTED_BUGS`` runs broken Raft representatives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from novacron.federation.config import FederationSection
from novacron.federation.wan import AWS_2017_REGIONS
from novacron.raft.invariants import SafetyChecker, SafetyViolation
from novacron.raft.log import RaftSafetyError
from novacron.raft.node import RaftNode
from novacron.seeding import RunSeeds
from sim.federation.component import assemble
from sim.federation.model import FederationModel, HostShape
from sim.raft.planted_bugs import PLANTED_BUGS
from sim.raft.vopr import SafetyCheckingHook, VoprTracer

FEDERATION_PLANTS = ("unrecorded-restart",)
PLANTS = (*FEDERATION_PLANTS, *sorted(PLANTED_BUGS))
TAIL_EVENTS = 30
QUIET_EVENTS = frozenset({"FederationViewSampled", "DatacenterUtilisationSampled"})
"""Periodic samples: left out of a seed's trace, which shows decisions and faults."""
SHAPE = HostShape(cpu=64.0, memory_gib=256.0, headroom_cpu_pct=20.0, headroom_memory_pct=10.0,
                  flavours=((1, 2.0), (2, 4.0), (4, 8.0), (8, 16.0)), caps_per_host=2, caps_global=10)
DETECTION_S = 20.0


@dataclass(frozen=True)
class FederationPlan:
    seed: int
    section: FederationSection
    partitions: tuple[tuple[float, int, float], ...]
    """(start s, datacenter index, duration s)."""
    outage: tuple[float, int] | None
    fault_window_s: float
    calm_s: float

    @classmethod
    def draw(cls, seed: int) -> FederationPlan:
        rng = RunSeeds(seed).python("fedvopr.plan")
        dcs = rng.sample(AWS_2017_REGIONS, rng.randint(3, 5))
        per_dc = 2 if len(dcs) <= 4 and rng.random() < 0.3 else 1
        section = FederationSection(
            enabled=True, datacenters=tuple(dcs), clusters_per_datacenter=per_dc, hosts_per_cluster=6,
            vms=rng.randint(10, 40), start_s=2.0, arrival_window_s=100.0,
            policy=rng.choice(("capacity", "latency", "locality")), ha_group_size=rng.choice((1, 2)),
            state_replication=rng.choice(("sync", "sync", "async")), async_interval_s=5.0, gossip_interval_s=2.0,
            failure_detection_s=DETECTION_S, vm_restart_s=5.0, sample_interval_s=30.0)
        window_s = 150.0
        partitions = []
        for _ in range(rng.randint(1, 4)):
            start = rng.uniform(5.0, window_s - 10.0)
            duration = min(rng.choice((rng.uniform(1.0, 10.0), rng.uniform(25.0, 60.0))), window_s - start)
            partitions.append((start, rng.randrange(len(dcs)), duration))
        outage = (rng.uniform(20.0, window_s), rng.randrange(len(dcs))) if rng.random() < 0.3 else None
        moves = RunSeeds(seed).python("fedvopr.moves")  # its own stream: the draws above stay as they were
        section = dataclasses.replace(section, migrations=moves.randint(0, 6), migration_start_s=20.0,
                                      migration_window_s=100.0, vm_disk_gib=1.0,
                                      migration_kind=moves.choice(("block-live", "cold")))
        return cls(seed, section, tuple(sorted(partitions)), outage, window_s, 150.0)

    def describe(self) -> str:
        s = self.section
        cuts = ", ".join(f"{s.datacenters[dc]}@{t:.0f}s+{d:.0f}s" for t, dc, d in self.partitions)
        lost = f"; {s.datacenters[self.outage[1]]} lost @{self.outage[0]:.0f}s" if self.outage else ""
        return (f"{len(s.datacenters)} DCs x {s.clusters_per_datacenter} ({', '.join(s.datacenters)}), "
                f"{s.vms} VMs, {s.policy}, {s.state_replication}, HA {s.ha_group_size}, "
                f"{s.migrations} {s.migration_kind} moves; cuts: {cuts}{lost}")


@dataclass
class FederationSeedResult:
    seed: int
    ok: bool
    plan: FederationPlan
    violation: str = ""
    placed: int = 0
    evacuated: int = 0
    fenced: int = 0
    plant: str | None = None
    events: list[str] = field(default_factory=list)

    def replay_command(self) -> str:
        plant = f" --plant {self.plant}" if self.plant else ""
        return f"novacron vopr --federation --seed {self.seed}{plant}"


def run_seed(seed: int, *, plant: str | None = None) -> FederationSeedResult:
    plan = FederationPlan.draw(seed)
    result = FederationSeedResult(seed, True, plan, plant=plant)
    seeds = RunSeeds(seed)

    def emit(cls: Any, **fields: Any) -> None:
        name = cls.__name__
        result.placed += name == "FederationVMPlaced"
        result.evacuated += name == "VMEvacuated"
        result.fenced += name == "VMFenced"
        if len(result.events) < 2000 and name not in QUIET_EVENTS:
            result.events.append(f"{model.now_s:8.3f} {name} {fields}")

    node_class: type[RaftNode] = PLANTED_BUGS.get(plant or "", RaftNode)
    model_plant = plant if plant in FEDERATION_PLANTS else None
    checking = SafetyCheckingHook(SafetyChecker(check_gaps=True), VoprTracer(full=False))  # the Raft vopr's checks
    model = assemble(plan.section, SHAPE, seed_rng=seeds.python, emit=emit, hooks=[checking],
                     node_class=node_class, plant=model_plant)
    _schedule_faults(model, plan)
    try:
        model.raft.run_until(plan.fault_window_s + plan.calm_s)
        problem = federation_problem(model)
    except (SafetyViolation, RaftSafetyError) as exc:
        problem = str(exc)
    if problem is not None:
        result.ok, result.violation = False, problem
    return result


def _schedule_faults(model: FederationModel, plan: FederationPlan) -> None:
    recovery = model.recovery
    for start, dc, duration in plan.partitions:
        model.raft.schedule(start, partial(recovery.cut, dc, duration))
    if plan.outage is not None:
        at_s, dc = plan.outage
        model.raft.schedule(at_s, lambda: recovery.fail(dc))


def federation_problem(model: FederationModel) -> str | None:
    """The first federation invariant the model breaks at the end of a seed, or None."""
    leader = model.raft.leader()
    if leader is None:
        return "Liveness: no federation leader after the calm period"
    state = model.state_of(leader.id - 1)
    where: dict[str, list[str]] = {}
    for agent in model.clusters:
        if agent.alive:
            for vm, local in agent.vms.items():
                if local.running:
                    where.setdefault(vm, []).append(agent.name)
    for vm, clusters in sorted(where.items()):
        if len(clusters) > 1:
            return f"Split brain: {vm} runs in {len(clusters)} clusters ({', '.join(clusters)})"
        recorded = state.vms.get(vm)
        name = model.clusters[recorded.cluster].name if recorded is not None else "nowhere"
        if recorded is None or name != clusters[0]:
            return f"Divergence: {vm} runs in {clusters[0]} but the committed state has it {name}"
    unanswered = sorted(vm for vm, r in model.requests.items() if not r.done and model.clusters[r.origin].alive)
    if unanswered:
        return f"Liveness: {len(unanswered)} request(s) never answered, first {unanswered[0]}"
    per_dc = model.section.clusters_per_datacenter
    stranded = sorted(vm for vm, p in state.vms.items() if p.cluster // per_dc in state.lost)
    if stranded:
        return f"Liveness: {len(stranded)} VM(s) still recorded in a lost datacenter, first {stranded[0]}"
    return None


def run_seeds(seeds: list[int], *, plant: str | None = None, progress: bool = False) -> int:
    """Run every seed; print each failure with its plan, replay command and last events.
    Returns the exit code: 0 if every seed passed, 1 otherwise."""
    from tqdm import tqdm  # the command line's progress bar, not the model's

    failed = 0
    for seed in tqdm(seeds, unit="seed", disable=not progress, leave=False):
        result = run_seed(seed, plant=plant)
        if result.ok:
            continue
        failed += 1
        print(f"seed {seed}: {result.violation}\n  plan: {result.plan.describe()}\n"
              f"  replay: {result.replay_command()}")
        for line in result.events[-TAIL_EVENTS:]:
            print(f"    {line}")
    print(f"{len(seeds) - failed} of {len(seeds)} seeds passed")
    return 1 if failed else 0
