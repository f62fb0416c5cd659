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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from novacron.cache.belady import belady_hits
from novacron.cache.policies import replay_hits
from novacron.cache.traces import next_access_positions

BASELINE = "s3fifo"


@dataclass(frozen=True, slots=True)
class RaceResult:
    policy: str
    requests: int
    hits: int
    baseline_hits: int
    belady_hits: int

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


def race(keys: Sequence[int], capacity: int, policies: Sequence[str]) -> list[RaceResult]:
    """Each policy's hits on ``keys`` at ``capacity`` items, with S3-FIFO's and Belady's beside."""
    ceiling = belady_hits(keys, capacity, next_access_positions(list(keys)))
    hits = {name: replay_hits(name, keys, capacity) for name in dict.fromkeys((BASELINE, *policies))}
    return [RaceResult(policy=name, requests=len(keys), hits=hits[name], baseline_hits=hits[BASELINE],
                       belady_hits=ceiling) for name in policies]
