"""The rebalancer: DRS-style load balancing and consolidation plans.

Theory of operation
-------------------
Imbalance metric. As VMware DRS (Gulati et al., "VMware Distributed Resource Management:
Design, Implementation, and Lessons Learned", VMware Technical Journal 2012), imbalance is the
standard deviation of a per-host load over the hosts that are up and powered on. A host's load
is its dominant share in percent: ``100 * max(cpu allocated / cpu capacity, memory allocated /
memory capacity)``, the resource that binds first. ``imbalance_pct`` is the population standard
deviation of that load, in percentage points.

Balance mode. While the imbalance exceeds the threshold, DRS-style greedy hill climbing: take
the VMs on the most loaded hosts, evaluate every destination at once (the scheduler's filters
give feasibility with headroom, anti-affinity and NUMA; the new standard deviation follows in
closed form from the load sums), and add the single move that lowers the imbalance most. Stop
when the imbalance is under the threshold, the best move's gain is under ``min_gain_pp2``, or
the caps are reached. The gain is the drop in the *sum* of squared load deviations
(``hosts x variance``, in pp²), not in the standard deviation: one move changes the sum by about
``2 a (L_src - L_dst - a)`` for a VM of load ``a`` whatever the cluster size, while its effect
on the standard deviation shrinks as hosts are added, so a threshold on the latter would stop
a 1000-host cluster from ever moving. Each accepted move strictly lowers the imbalance, so a plan never raises it,
and taking the best move each time keeps the plan short (few moves for the gain).

Consolidation mode. Take the emptiest powered-on hosts, in order, whose every VM can be
re-homed on the other powered-on hosts that are not themselves being emptied (largest VM first,
onto the most allocated host that passes the filters: a what-if best-fit decreasing), and move
their VMs off as far as the caps allow; once a host is empty it is proposed for power-off.
Consolidation trades balance for energy: it may raise the imbalance.

Both modes respect the caps (a plan is one wave of moves that start together: at most
``max_moves_per_host`` per host as source or destination and ``max_moves_total`` in all, plus
whatever the ``MoveAdmission`` says about migrations in flight), and never move a VM moved within
``ping_pong_window_s`` (time is injected as ``now_s``). The host table passed in is not mutated
(balance mode tries its moves on it inside ``HostTable.what_if``, which puts it back exactly).

Cost. The owner keeps a ``Placements`` index (VMs by row, and by demand within a row) up to
date as VMs come, move and go, and a plan is an overlay on it. A step scores each (donor row,
demand) class once and tries that class's VMs in id order only until one attains the class's
value (a VM's own groups can only strike destinations out, so no later VM of the class is
strictly better): a round reads a few VMs per shape on the donor rows and a few vectors over
the hosts per step, whatever the number of VMs per host (``benchmarks/bench_rebalance_scale.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from novacron.scheduler.admission import Move, MoveAdmission
from novacron.scheduler.framework import Scheduler
from novacron.scheduler.policies import ReadsDemandAndGroupsOnly
from novacron.scheduler.state import CPU, MEMORY, BoolArray, FloatArray, HostTable, PlacementRequest

Demand = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class PlacedVM:
    request: PlacementRequest
    row: int
    numa_split: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceConfig:
    imbalance_threshold_pct: float = 5.0
    min_gain_pp2: float = 5.0
    """Least drop in the sum of squared host-load deviations (pp²) a move must bring: moving a
    1 % VM between hosts 5 pp either side of the mean gains about 20 pp²."""
    max_moves_per_host: int = 2
    max_moves_total: int = 10
    ping_pong_window_s: float = 1800.0
    source_hosts: int = 3
    """How many of the most loaded hosts donate candidate VMs per step (balance mode)."""


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    mode: str
    moves: tuple[Move, ...]
    imbalance_before_pct: float
    imbalance_after_pct: float
    hosts_to_power_off: tuple[str, ...] = ()


def host_load_pct(hosts: HostTable) -> FloatArray:
    """Dominant share per host, in percent."""
    cpu = hosts.allocated[CPU] / np.maximum(hosts.capacity[CPU], 1e-12)
    memory = hosts.allocated[MEMORY] / np.maximum(hosts.capacity[MEMORY], 1e-12)
    load: FloatArray = 100.0 * np.maximum(cpu, memory)
    return load


def active_hosts(hosts: HostTable) -> BoolArray:
    active: BoolArray = hosts.up & hosts.powered_on
    return active


def imbalance_pct(hosts: HostTable) -> float:
    """Population standard deviation of host load over active hosts (percentage points)."""
    load = host_load_pct(hosts)[active_hosts(hosts)]
    return float(load.std()) if load.size else 0.0


class Placements:
    """Where each VM runs, indexed by host row, kept up to date by its owner as VMs come, move
    and go, so a rebalancing round reads the few rows it looks at instead of rebuilding an index
    over every VM (the cost of a round then follows its moves, not the cluster's VM count)."""

    def __init__(self, vms: Iterable[PlacedVM] = ()) -> None:
        self._vms: dict[str, PlacedVM] = {}
        self._by_row: dict[int, set[str]] = {}
        self._sorted: dict[int, list[str]] = {}
        self._by_shape: dict[int, dict[Demand, set[str]]] = {}
        """Row -> demand -> ids: a balancing step reads a few VMs per shape, not every VM on a row."""
        self._shape_sorted: dict[tuple[int, Demand], list[str]] = {}
        for vm in vms:
            self.put(vm)

    def __len__(self) -> int:
        return len(self._vms)

    def __getitem__(self, vm_id: str) -> PlacedVM:
        return self._vms[vm_id]

    def get(self, vm_id: str) -> PlacedVM | None:
        return self._vms.get(vm_id)

    def values(self) -> Iterable[PlacedVM]:
        return self._vms.values()

    def items(self) -> Iterable[tuple[str, PlacedVM]]:
        return self._vms.items()

    def put(self, vm: PlacedVM) -> None:
        """Add a VM, or record where it now runs."""
        vm_id = vm.request.vm_id
        self.pop(vm_id)
        self._vms[vm_id] = vm
        self._by_row.setdefault(vm.row, set()).add(vm_id)
        self._sorted.pop(vm.row, None)
        self._by_shape.setdefault(vm.row, {}).setdefault(vm.request.demand, set()).add(vm_id)
        self._shape_sorted.pop((vm.row, vm.request.demand), None)

    def pop(self, vm_id: str) -> PlacedVM | None:
        vm = self._vms.pop(vm_id, None)
        if vm is not None:
            self._by_row[vm.row].discard(vm_id)
            self._sorted.pop(vm.row, None)
            shapes = self._by_shape[vm.row]
            shapes[vm.request.demand].discard(vm_id)
            if not shapes[vm.request.demand]:
                del shapes[vm.request.demand]
            self._shape_sorted.pop((vm.row, vm.request.demand), None)
        return vm

    def shapes_on(self, row: int) -> list[list[str]]:
        """The ids of the VMs on ``row``, one sorted list per demand."""
        return [self._ids_of_shape(row, demand) for demand in self._by_shape.get(row, {})]

    def _ids_of_shape(self, row: int, demand: Demand) -> list[str]:
        ids = self._shape_sorted.get((row, demand))
        if ids is None:
            ids = self._shape_sorted[row, demand] = sorted(self._by_shape[row][demand])
        return ids

    def ids_on(self, row: int) -> list[str]:
        """The ids of the VMs on ``row``, sorted (the order the rebalancer breaks ties in)."""
        ids = self._sorted.get(row)
        if ids is None:
            ids = self._sorted[row] = sorted(self._by_row.get(row, ()))
        return ids

    def rows(self) -> list[int]:
        return [row for row, ids in self._by_row.items() if ids]


@dataclass
class _Plan:
    """A plan being built: the moves so far over the placements as they were (an overlay)."""

    hosts: HostTable
    """The what-if table: the caller's table inside ``what_if`` (balance) or a copy (consolidation)."""
    base: Placements
    config: RebalanceConfig
    admission: MoveAdmission
    excluded: Collection[str]
    """VMs the plan must leave alone (their move is in flight)."""
    last_moved_s: Mapping[str, float]
    now_s: float
    moves: list[Move] = field(default_factory=list)
    per_host: Counter[int] = field(default_factory=Counter)
    moved: dict[str, PlacedVM] = field(default_factory=dict)
    arrived: dict[int, list[str]] = field(default_factory=dict)
    """VM ids moved onto each row by this plan, in the order of the moves."""
    unmovable: set[str] = field(default_factory=set)

    def movable(self, vm_id: str) -> bool:
        return (vm_id not in self.unmovable and vm_id not in self.excluded
                and self.now_s - self.last_moved_s.get(vm_id, -np.inf) >= self.config.ping_pong_window_s)

    def on_row(self, row: int) -> list[PlacedVM]:
        """The VMs on ``row`` now: those placed there (by id) and then those this plan moved there."""
        here = [self.base[v] for v in self.base.ids_on(row) if v not in self.moved and v not in self.excluded]
        return here + [self.moved[v] for v in self.arrived.get(row, ()) if self.moved[v].row == row]

    def occupied(self) -> set[int]:
        return {row for row in self.base.rows() if self.on_row(row)} | {v.row for v in self.moved.values()}

    def slots_free(self) -> BoolArray:
        used = np.zeros(self.hosts.size, dtype=np.int64)
        for row, count in self.per_host.items():
            used[row] = count
        free: BoolArray = used < self.config.max_moves_per_host
        return free

    def full(self) -> bool:
        return len(self.moves) >= self.config.max_moves_total

    def admit(self, vm: PlacedVM, destination: int) -> bool:
        ids = self.hosts.host_ids
        move = Move(vm.request.vm_id, ids[vm.row], ids[destination])
        if self.full() or not self.admission.may_start(move, tuple(self.moves)):
            return False
        self.hosts.release(vm.row, vm.request, vm.numa_split)
        split = self.hosts.allocate(destination, vm.request)
        self.moved[vm.request.vm_id] = replace(vm, row=destination, numa_split=split)
        self.moves.append(move)
        self.per_host[vm.row] += 1
        self.per_host[destination] += 1
        self.arrived.setdefault(destination, []).append(vm.request.vm_id)
        self.unmovable.add(vm.request.vm_id)
        return True


def _placements(vms: Sequence[PlacedVM] | Placements) -> Placements:
    return vms if isinstance(vms, Placements) else Placements(vms)


def _std_after_moves(hosts: HostTable, vm: PlacedVM, load: FloatArray, active: BoolArray) -> FloatArray:
    """Imbalance after moving ``vm`` to each host (closed form from the sums of load)."""
    demand = vm.request.demand_array()
    capacity = np.maximum(hosts.capacity[[CPU, MEMORY]], 1e-12)
    dest_after = 100.0 * np.max((hosts.allocated[[CPU, MEMORY]] + demand[[CPU, MEMORY], None]) / capacity, axis=0)
    src_alloc = hosts.allocated[[CPU, MEMORY], vm.row] - demand[[CPU, MEMORY]]
    src_after = 100.0 * float(np.max(np.maximum(src_alloc, 0.0) / capacity[:, vm.row]))
    n = max(int(active.sum()), 1)
    total, squares = load[active].sum(), (load[active] ** 2).sum()
    total_after = total - load[vm.row] + src_after - load + dest_after
    squares_after = squares - load[vm.row] ** 2 + src_after**2 - load**2 + dest_after**2
    std: FloatArray = np.sqrt(np.maximum(squares_after / n - (total_after / n) ** 2, 0.0))
    return std


def _class_filters_only(scheduler: Scheduler) -> bool:
    """Whether the filters read a request only through its demand and its groups (the built-in
    ones do), so one evaluation per (row, demand) serves every VM of that shape on the row."""
    return all(isinstance(f, ReadsDemandAndGroupsOnly) for f in scheduler.filters)


class _Candidates:
    """The best destination of each candidate VM for one step of balance mode.

    VMs of one shape on one row share everything but their groups: feasibility by demand,
    and the imbalance after the move (closed form, ``_std_after_moves``). So the vector work is
    done once per (row, demand), and a VM's anti-affinity group only strikes out the few rows
    holding its group's members. A scheduler with other filters, or a VM with an affinity group,
    is evaluated VM by VM (the reference path, which this must equal)."""

    def __init__(self, plan: _Plan, scheduler: Scheduler, load: FloatArray, active: BoolArray,
                 open_rows: BoolArray) -> None:
        self.plan, self.scheduler, self.load, self.active, self.open_rows = plan, scheduler, load, active, open_rows
        self.by_class = _class_filters_only(scheduler)
        self._scores: dict[tuple[int, tuple[float, ...]], tuple[FloatArray, tuple[float, int] | None]] = {}

    def attains_its_class(self, vm: PlacedVM) -> bool:
        """Whether ``best(vm)`` is its (row, demand) class's value, the lowest any VM of the class
        can have (a VM's own groups only strike rows out), or the class has no destination at all."""
        if not self.by_class:
            return False
        found = self._class_scores(vm)[1]
        if found is None:
            return True
        group = vm.request.anti_affinity_group
        struck = group is not None and found[1] in self.plan.hosts.groups.get(group, ())
        return vm.request.affinity_group is None and not struck

    def best(self, vm: PlacedVM) -> tuple[float, int] | None:
        """(imbalance after the move, destination row) for the VM's best destination, or None."""
        if not self.by_class or vm.request.affinity_group is not None:
            return self._reference(vm)
        std, found = self._class_scores(vm)
        group = vm.request.anti_affinity_group
        if found is None or group is None or found[1] not in self.plan.hosts.groups.get(group, ()):
            return found  # the common case: a dict lookup per VM, no vector work
        std = std.copy()
        std[list(self.plan.hosts.groups[group])] = np.inf
        return _lowest(std)

    def _class_scores(self, vm: PlacedVM) -> tuple[FloatArray, tuple[float, int] | None]:
        key = (vm.row, vm.request.demand)
        known = self._scores.get(key)
        if known is None:
            shape = replace(vm.request, affinity_group=None, anti_affinity_group=None)
            mask, _ = self.scheduler.feasible(self.plan.hosts, shape)
            std = self._masked_std(vm, mask)
            known = self._scores[key] = (std, _lowest(std))
        return known

    def _masked_std(self, vm: PlacedVM, mask: BoolArray) -> FloatArray:
        mask &= self.active & self.open_rows
        mask[vm.row] = False
        std: FloatArray = np.where(mask, _std_after_moves(self.plan.hosts, vm, self.load, self.active), np.inf)
        return std

    def _reference(self, vm: PlacedVM) -> tuple[float, int] | None:
        mask, _ = self.scheduler.feasible(self.plan.hosts, vm.request)
        return _lowest(self._masked_std(vm, mask))


def _lowest(std: FloatArray) -> tuple[float, int] | None:
    """(value, row) of the first lowest finite entry, or None when every row is infeasible."""
    row = int(np.argmin(std))
    value = float(std[row])
    return (value, row) if value != np.inf else None


def _best_balancing_move(plan: _Plan, scheduler: Scheduler) -> tuple[float, PlacedVM, int] | None:
    hosts = plan.hosts
    load, active, slots = host_load_pct(hosts), active_hosts(hosts), plan.slots_free()
    ranked = [int(r) for r in np.argsort(-load, kind="stable") if active[r] and slots[r]]
    candidates = _Candidates(plan, scheduler, load, active, slots)
    best: tuple[float, PlacedVM, int] | None = None
    for row in sorted(ranked[: plan.config.source_hosts]):
        found = _best_on_row(plan, candidates, row)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return best


def _best_on_row(plan: _Plan, candidates: _Candidates, row: int) -> tuple[float, PlacedVM, int] | None:
    """The row's best move: the lowest imbalance after it, and on a tie the VM first in id order
    (the order the VMs on a row are tried in). VMs of one demand are tried in id order only until
    one attains the class's value: none after it can be strictly better, so a step reads a few
    VMs per shape, not every VM on the row."""
    # By class, only the VMs placed on the row: those this plan moved there are unmovable anyway.
    classes = plan.base.shapes_on(row) if candidates.by_class else [[vm.request.vm_id for vm in plan.on_row(row)]]
    best: tuple[float, str, PlacedVM, int] | None = None
    for ids in classes:
        for vm_id in ids:
            if not plan.movable(vm_id):
                continue
            vm = plan.base[vm_id] if vm_id not in plan.moved else plan.moved[vm_id]
            found = candidates.best(vm)
            if found is not None and (best is None or (found[0], vm_id) < best[:2]):
                best = (found[0], vm_id, vm, found[1])
            if candidates.attains_its_class(vm):
                break
    return None if best is None else (best[0], best[2], best[3])


def plan_balance(hosts: HostTable, vms: Sequence[PlacedVM] | Placements, scheduler: Scheduler,
                 admission: MoveAdmission, *, config: RebalanceConfig, last_moved_s: Mapping[str, float],
                 now_s: float, excluded: Collection[str] = frozenset()) -> RebalancePlan:
    """Moves that lower the imbalance below the threshold, best move first."""
    before = current = imbalance_pct(hosts)
    active = max(int(active_hosts(hosts).sum()), 1)
    with hosts.what_if():
        plan = _Plan(hosts, _placements(vms), config, admission, excluded, last_moved_s, now_s)
        while current > config.imbalance_threshold_pct and not plan.full():
            best = _best_balancing_move(plan, scheduler)
            if best is None or active * (current**2 - best[0] ** 2) < config.min_gain_pp2:
                break
            if not plan.admit(best[1], best[2]):
                plan.unmovable.add(best[1].request.vm_id)  # refused: try the next best VM
                continue
            current = imbalance_pct(plan.hosts)
    return RebalancePlan("balance", tuple(plan.moves), before, current)


def _evacuation(base: HostTable, plan: _Plan, scheduler: Scheduler, donor: int,
                donors: set[int]) -> tuple[list[tuple[PlacedVM, int]], HostTable] | None:
    """Destinations for every VM on ``donor`` and the what-if table with them there, or None."""
    what_if = base.copy()
    on_donor = sorted(plan.on_row(donor),
                      key=lambda v: (-v.request.demand[MEMORY], -v.request.demand[CPU], v.request.vm_id))
    targets = active_hosts(what_if)
    targets[list(donors | {donor})] = False
    moves = []
    for vm in on_donor:
        if not plan.movable(vm.request.vm_id):
            return None
        mask, _ = scheduler.feasible(what_if, vm.request)
        mask &= targets
        if not mask.any():
            return None
        load = np.where(mask, host_load_pct(what_if), -np.inf)
        destination = int(np.argmax(load))
        what_if.release(vm.row, vm.request, vm.numa_split)
        what_if.allocate(destination, vm.request)
        moves.append((vm, destination))
    return moves, what_if


def plan_consolidation(hosts: HostTable, vms: Sequence[PlacedVM] | Placements, scheduler: Scheduler,
                       admission: MoveAdmission, *, config: RebalanceConfig, last_moved_s: Mapping[str, float],
                       now_s: float, excluded: Collection[str] = frozenset()) -> RebalancePlan:
    """Empty the least loaded hosts that can be emptied, so they can be powered off."""
    plan = _Plan(hosts.copy(), _placements(vms), config, admission, excluded, last_moved_s, now_s)
    before = imbalance_pct(hosts)
    occupied = plan.occupied()
    active = active_hosts(hosts)
    order = [int(r) for r in np.argsort(host_load_pct(hosts), kind="stable") if active[r]]
    idle = [r for r in order if r not in occupied]
    # Already empty hosts can go at once; keep one powered on so the cluster can take a VM.
    emptied = [hosts.host_ids[r] for r in idle[: len(order) - max(len(occupied), 1)]]
    donors: set[int] = set()
    # Each donor's whole evacuation is reserved, including the moves the caps defer to later
    # waves, so a later donor cannot take the room an earlier one needs (which would leave it
    # half emptied, its moves wasted).
    reserved = plan.hosts
    for donor in (r for r in order if r in occupied):
        if plan.full() or len(occupied) - len(donors) <= 1:
            break
        found = _evacuation(reserved, plan, scheduler, donor, donors)
        if found is None:
            continue
        evacuation, reserved = found
        donors.add(donor)
        moved = sum(plan.admit(vm, destination) for vm, destination in evacuation
                    if plan.slots_free()[donor] and plan.slots_free()[destination])
        if moved == len(evacuation):
            emptied.append(hosts.host_ids[donor])
        # A donor only partly moved this wave is the emptiest host again next wave and is finished
        # first; later donors in this wave use the slots that remain.
    return RebalancePlan("consolidate", tuple(plan.moves), before, imbalance_pct(plan.hosts), tuple(emptied))
