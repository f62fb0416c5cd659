"""Adaptive L1 sizing: grow L1 while its hit rate is below target, shrink it when well above.

Theory of operation
-------------------
At each cleanup cycle the hierarchy hands over L1's cumulative hit and miss counters; the sizer
looks at the cycle's own hit rate (the difference since its last call) and moves the capacity by
``step_fraction`` towards ``target_hit_rate_pct``, within ``[min_capacity, max_capacity]``. Above
the target plus ``shrink_margin_pct`` it gives memory back. Cycles with fewer than
``min_requests`` requests carry too little evidence and change nothing. It is a plain
multiplicative controller (the same shape as TCP's AIMD without the asymmetry): simple and stable
for hit-rate curves, which are concave in the capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class AdaptiveSizing:
    """Moves L1's capacity (in entries) towards a target hit rate, one cleanup cycle at a time."""

    min_capacity: int
    max_capacity: int
    target_hit_rate_pct: float = 85.0
    shrink_margin_pct: float = 5.0
    """Shrink only when the cycle's hit rate exceeds the target by more than this."""
    step_fraction: float = 0.1
    """Capacity changes by this fraction of itself per cycle."""
    min_requests: int = 100
    _last: tuple[int, int] = field(default=(0, 0), init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.min_capacity <= self.max_capacity:
            raise ValueError(f"need 1 <= min_capacity <= max_capacity, got {self.min_capacity}, "
                             f"{self.max_capacity}")
        if not 0 < self.step_fraction < 1:
            raise ValueError(f"step_fraction must be in (0, 1), got {self.step_fraction}")

    def decide(self, hits: int, misses: int, capacity: int) -> tuple[int, float]:
        """The new capacity and the cycle's hit rate (NaN if the cycle had too few requests)."""
        cycle_hits, cycle_misses = hits - self._last[0], misses - self._last[1]
        self._last = (hits, misses)
        requests = cycle_hits + cycle_misses
        if requests < self.min_requests:
            return capacity, float("nan")
        hit_rate_pct = 100.0 * cycle_hits / requests
        step = max(1, int(capacity * self.step_fraction))
        if hit_rate_pct < self.target_hit_rate_pct:
            capacity += step
        elif hit_rate_pct > self.target_hit_rate_pct + self.shrink_margin_pct:
            capacity -= step
        return min(self.max_capacity, max(self.min_capacity, capacity)), hit_rate_pct
