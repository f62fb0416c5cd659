"""The filter, score, select pipeline.

Theory of operation
-------------------
As Nova's FilterScheduler and the Kubernetes scheduling framework: every filter yields a mask
over all hosts and the masks are and-ed (a host must pass them all); every scorer yields a score
in [0, 1] per host and the scores are combined as a weighted mean with the user's weights;
infeasible hosts are set to -inf and the best host is selected. Hosts whose combined score is
within ``TIE_TOLERANCE`` of the best are ties, broken with the injected generator so that a
spread policy does not always pick the lowest-numbered of identical hosts, yet the same seed
reproduces the same placements.

A *soft* filter (the health filter) gives way when it would leave no host for a VM over the
whole table (``feasible(..., lenient=True)``): it steers placements, it does not reject them.

A ``Decision`` also says how many hosts were feasible and, when none were, the first filter
that left no host standing, which is what the runtime reports as the rejection reason.
Evaluation is pure: the host table and request are only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from novacron.scheduler.policies import Filter, Scorer
from novacron.scheduler.state import BoolArray, FloatArray, HostTable, PlacementRequest

TIE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Decision:
    vm_id: str
    row: int | None
    """Row of the chosen host in the table evaluated, or None when no host is feasible."""
    host_index: int | None
    """The chosen host's cluster index (``HostTable.index``)."""
    score: float
    hosts_feasible: int
    rejected_by: str | None = None
    cached: bool = False
    """Served by the decision cache (then ``score`` is NaN and ``hosts_feasible`` is 1)."""

    @property
    def placed(self) -> bool:
        return self.row is not None


@dataclass(frozen=True, slots=True)
class Evaluation:
    combined: FloatArray
    """Scores of rows ``offset`` to ``offset + len(combined)`` of the table (-inf: infeasible)."""
    hosts_feasible: int
    rejected_by: str | None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class WeightedScorer:
    scorer: Scorer
    weight: float


class Scheduler:
    """Filters, weighted scorers and a seeded tie-break; stateless between calls."""

    def __init__(self, filters: Sequence[Filter], scorers: Sequence[WeightedScorer], *,
                 hosts_to_score: int = 0) -> None:
        if any(s.weight < 0 for s in scorers):
            raise ValueError("scorer weights must be >= 0")
        self.hosts_to_score = hosts_to_score
        self.filters = tuple(filters)
        self.scorers = tuple(s for s in scorers if s.weight > 0)
        self._weight_total = sum(s.weight for s in self.scorers) or 1.0

    @property
    def policy_count(self) -> int:
        return len(self.filters) + len(self.scorers)

    def feasible(self, hosts: HostTable, request: PlacementRequest, *,
                 lenient: bool = False) -> tuple[BoolArray, str | None]:
        """The mask of hosts passing every filter, and the filter that emptied it (if any).

        ``lenient``: a *soft* filter (``soft = True``, such as the health filter, listed after
        the hard ones) that would leave no host is skipped -- a degraded host is better than
        none for a VM that must run. Placement over the whole table is lenient; a window, a
        cache re-check and the rebalancer's destinations are strict."""
        mask = np.ones(hosts.size, dtype=bool)
        for f in self.filters:
            if lenient and getattr(f, "soft", False):
                narrowed = mask & f.feasible(hosts, request)
                if narrowed.any():
                    mask = narrowed
                continue
            mask &= f.feasible(hosts, request)
            if not mask.any():
                return mask, f.name
        return mask, None

    def scores(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        """The weighted mean score per host (feasibility not applied)."""
        total = np.zeros(hosts.size)
        for s in self.scorers:
            total += s.weight * s.scorer.score(hosts, request)
        combined: FloatArray = total / self._weight_total
        return combined

    def evaluate(self, hosts: HostTable, request: PlacementRequest,
                 rng: np.random.Generator | None = None) -> Evaluation:
        """Combined scores with infeasible hosts at -inf (all of them when none is feasible).

        With ``hosts_to_score`` set and a generator given, only a window of that many hosts at a
        random offset is evaluated, as Kubernetes' percentageOfNodesToScore; when the window has
        no feasible host, or the request's affinity group has members (affinity is a property of
        the whole cluster), every host is evaluated.
        """
        window = self._window(hosts, request, rng)
        if window is not None:
            start, view, windowed = window
            evaluation = self._evaluate_all(view, windowed, lenient=False)
            if evaluation.rejected_by is None:
                return Evaluation(evaluation.combined, evaluation.hosts_feasible, None, start)
        return self._evaluate_all(hosts, request)

    def _window(self, hosts: HostTable, request: PlacementRequest,
                rng: np.random.Generator | None) -> tuple[int, HostTable, PlacementRequest] | None:
        size = self.hosts_to_score
        if rng is None or size <= 0 or size >= hosts.size:
            return None
        if request.affinity_group is not None and hosts.group_counts(request.affinity_group).any():
            return None
        start = int(rng.integers(hosts.size - size + 1))
        view = hosts.window(start, start + size, (request.anti_affinity_group,))
        if request.peer_hosts and not request.peer_racks:
            rows = np.searchsorted(hosts.index, request.peer_hosts)
            peer_racks = tuple(hosts.rack[rows[rows < hosts.size]].tolist())
            request = replace(request, peer_racks=peer_racks)
        return start, view, request

    def _evaluate_all(self, hosts: HostTable, request: PlacementRequest, *, lenient: bool = True) -> Evaluation:
        mask, rejected_by = self.feasible(hosts, request, lenient=lenient)
        if rejected_by is not None:
            return Evaluation(np.full(hosts.size, -np.inf), 0, rejected_by)
        combined = np.where(mask, self.scores(hosts, request), -np.inf)
        return Evaluation(combined, int(mask.sum()), None)

    def select(self, hosts: HostTable, request: PlacementRequest, evaluation: Evaluation,
               rng: np.random.Generator) -> Decision:
        if evaluation.rejected_by is not None:
            return Decision(request.vm_id, None, None, float("-inf"), 0, evaluation.rejected_by)
        combined = evaluation.combined
        best = float(combined.max())
        ties = np.flatnonzero(combined >= best - TIE_TOLERANCE)
        row = evaluation.offset + (int(ties[rng.integers(ties.size)]) if ties.size > 1 else int(ties[0]))
        return Decision(request.vm_id, row, int(hosts.index[row]), best, evaluation.hosts_feasible)

    def place(self, hosts: HostTable, request: PlacementRequest, rng: np.random.Generator) -> Decision:
        return self.select(hosts, request, self.evaluate(hosts, request, rng), rng)

    def is_feasible_on(self, hosts: HostTable, row: int, request: PlacementRequest) -> bool:
        """Whether one host still passes every filter (the decision cache's re-check)."""
        one = hosts.window(row, row + 1, (request.affinity_group, request.anti_affinity_group))
        if request.affinity_group is not None:
            # Affinity depends on where the group's members are in the whole cluster: a host
            # without members is infeasible as soon as the group has members elsewhere.
            counts = hosts.group_counts(request.affinity_group)
            if counts.any() and counts[row] == 0:
                return False
        mask, _ = self.feasible(one, request)
        return bool(mask[0])
