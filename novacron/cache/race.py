"""Eviction policies raced on one key sequence, scored against S3-FIFO and Belady's MIN.

Theory of operation
-------------------
Every policy replays the same keys through the same harness (``policies.replay_hits``: unit
sizes, the policy names every victim, an admission is an immediate eviction), and Belady's MIN
(``belady.belady_hits``) at the same capacity is the ceiling. The score of a policy is the share
of the gap between the baseline (S3-FIFO) and the ceiling that it closes:

    gap_closed_pct = 100 * (hits - baseline_hits) / (belady_hits - baseline_hits)

negative when it does worse than the baseline; undefined (``None``) when the baseline already
reaches the ceiling.

A name ``POLICY+prefetch`` races that policy with the learned sequential preloader
(``novacron.cache.prefetch``, horizon ``PREFETCH_HORIZON_FACTOR`` x capacity, one preload per
request at most) in ``prefetch.replay_with_prefetch``, which scores demand requests only and
counts the preloads and how many were used. MIN is a demand-paging bound, so a preloading entry
can close more than 100 % of the gap; the table says so beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from novacron.cache.belady import belady_hits
from novacron.cache.policies import make_policy, replay_hits
from novacron.cache.prefetch import SequentialPrefetcher, replay_with_prefetch
from novacron.cache.traces import next_access_positions

BASELINE = "s3fifo"
PREFETCH_SUFFIX = "+prefetch"
PREFETCH_HORIZON_FACTOR = 2


@dataclass(frozen=True, slots=True)
class RaceResult:
    policy: str
    requests: int
    hits: int
    baseline_hits: int
    belady_hits: int
    prefetches: int = 0
    prefetches_used: int = 0

    @property
    def hit_rate_pct(self) -> float:
        return 100.0 * self.hits / max(self.requests, 1)

    @property
    def belady_hit_rate_pct(self) -> float:
        return 100.0 * self.belady_hits / max(self.requests, 1)

    @property
    def gap_closed_pct(self) -> float | None:
        gap = self.belady_hits - self.baseline_hits
        return None if gap <= 0 else 100.0 * (self.hits - self.baseline_hits) / gap

    @property
    def prefetch_accuracy_pct(self) -> float | None:
        return None if self.prefetches == 0 else 100.0 * self.prefetches_used / self.prefetches


def _replay(name: str, keys: Sequence[int], capacity: int) -> tuple[int, int, int]:
    """(demand hits, preloads, preloads used) of one race entry."""
    if not name.endswith(PREFETCH_SUFFIX):
        return replay_hits(name, keys, capacity), 0, 0
    policy = make_policy(name.removesuffix(PREFETCH_SUFFIX), capacity)
    prefetcher = SequentialPrefetcher(PREFETCH_HORIZON_FACTOR * capacity)
    replay = replay_with_prefetch(policy, keys, capacity, prefetcher)
    return replay.hits, replay.prefetches, replay.prefetches_used


def race(keys: Sequence[int], capacity: int, policies: Sequence[str]) -> list[RaceResult]:
    """Each policy's hits on ``keys`` at ``capacity`` items, with S3-FIFO's and Belady's beside."""
    ceiling = belady_hits(keys, capacity, next_access_positions(list(keys)))
    runs = {name: _replay(name, keys, capacity) for name in dict.fromkeys((BASELINE, *policies))}
    return [RaceResult(policy=name, requests=len(keys), hits=runs[name][0], baseline_hits=runs[BASELINE][0],
                       belady_hits=ceiling, prefetches=runs[name][1], prefetches_used=runs[name][2])
            for name in policies]
