"""What every vopr (the Raft one, the BFT one) reports per seed, and how it runs a list of seeds.

Theory of operation: a vopr runs seeds in order and stops at the first that breaks a checked
property. Each seed's outcome says whether it passed, the violation, the last trace lines, the
steps it took, the keys whose linearizability search ran out of budget (an UNKNOWN, not a pass)
and the planted bug it ran with; each vopr adds its own counts (``COUNTED``) and its replay
command. ``run_until_failure`` sums those counts over the passing seeds; at the first failure it
prints the seed, its plan, its last events and the replay command, and writes the full trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class DescribedPlan(Protocol):
    def describe(self) -> str: ...


PlanT = TypeVar("PlanT", bound=DescribedPlan)


@dataclass
class SeedOutcome(Generic[PlanT]):
    seed: int
    ok: bool
    plan: PlanT
    violation: str | None = None
    trace: list[str] = field(default_factory=list)
    steps: int = 0
    unknown_keys: tuple[str, ...] = ()
    """Keys whose linearizability search ran out of budget: not a pass, counted and reported."""
    plant: str | None = None

    COUNTED: ClassVar[tuple[str, ...]] = ()
    """The integer fields ``run_until_failure`` sums over the seeds."""

    def replay_command(self) -> str:
        raise NotImplementedError


OutcomeT = TypeVar("OutcomeT", bound="SeedOutcome[Any]")


def report_failure(tool: str, result: SeedOutcome[PlanT], out: Callable[[str], None] = print) -> None:
    out(f"{tool}: seed {result.seed} FAILED: {result.violation}")
    out(f"  plan: {result.plan.describe()}")
    out("  last events:")
    for line in result.trace:
        out(f"    {line}")
    out(f"  replay: {result.replay_command()}")


@dataclass
class SeedTotals:
    """The counts summed over the seeds that passed, and the seeds with UNKNOWN keys."""

    counts: Counter[str] = field(default_factory=Counter)
    unknown_seeds: list[int] = field(default_factory=list)

    def report_unknown(self, tool: str, out: Callable[[str], None]) -> None:
        if self.unknown_seeds:
            out(f"{tool}: UNKNOWN linearizability (search over budget) on {len(self.unknown_seeds)} seeds, not "
                f"counted as passed for those keys: {self.unknown_seeds[:20]}")


def run_until_failure(seeds: list[int], run: Callable[[int], OutcomeT], *, tool: str, progress: bool,
                      write_trace: Callable[[OutcomeT], Path], out: Callable[[str], None]) -> SeedTotals | None:
    """Run ``seeds`` in order; None after reporting the first failure and writing its full trace."""
    from tqdm import tqdm

    totals = SeedTotals()
    with tqdm(seeds, unit="seed", disable=not progress, leave=False, desc=tool) as bar:
        for done, seed in enumerate(bar, start=1):
            result = run(seed)
            totals.counts.update({name: getattr(result, name) for name in result.COUNTED})
            if result.unknown_keys:
                totals.unknown_seeds.append(seed)
            if not progress and done % 1000 == 0:
                out(f"{tool}: {done}/{len(seeds)} seeds passed")
            if not result.ok:
                bar.close()
                report_failure(tool, result, out)
                out(f"  full trace: {write_trace(result)}")
                return None
    return totals
