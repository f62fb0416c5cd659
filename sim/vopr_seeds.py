"""What every vopr (the Raft one, the BFT one) reports per seed, and how it runs a list of seeds.

Theory of operation: a vopr runs seeds in order and stops at the first that breaks a checked
property. Each seed's outcome says whether it passed, the violation, the last trace lines, the
steps it took, the keys whose linearizability search ran out of budget (an UNKNOWN, not a pass)
and the planted bug it ran with; each vopr adds its own counts (``COUNTED``) and its replay
command. ``run_until_failure`` sums those counts over the passing seeds and prints them as the vopr
describes them; at the first failure it prints the seed, its plan, its last events and the replay
command, and has the full trace written: the vopr runs the seed again with every event traced and
``write_trace_file`` gives the file its one format.
"""

from __future__ import annotations

import time
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


def write_trace_file(directory: Path, stem: str, traced: SeedOutcome[PlanT]) -> Path:
    """Write ``traced`` (a failing seed run again with every event traced) to
    ``directory/<stem>[-<plant>].txt``: the violation, the replay command, every trace line."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (stem + (f"-{traced.plant}" if traced.plant else "") + ".txt")
    lines = [f"seed {traced.seed}: {traced.violation}", f"replay: {traced.replay_command()}", *traced.trace]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class SeedTotals:
    """The counts summed over the seeds that passed, the seeds with UNKNOWN keys, the time taken."""

    seeds: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    unknown_seeds: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def run_until_failure(seeds: list[int], run: Callable[[int], OutcomeT], *, tool: str, progress: bool,
                      write_trace: Callable[[OutcomeT], Path], describe: Callable[[SeedTotals], str],
                      out: Callable[[str], None]) -> int:
    """Run ``seeds`` in order. At the first failure: report it, write its full trace, return 1.
    Otherwise print ``<tool>: N seeds passed (<describe(totals)>)`` and the UNKNOWN seeds; return 0."""
    from tqdm import tqdm

    totals = SeedTotals(seeds=len(seeds))
    started_s, started_cpu_s = time.perf_counter(), time.process_time()
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
                return 1
    totals.wall_s, totals.cpu_s = time.perf_counter() - started_s, time.process_time() - started_cpu_s
    out(f"{tool}: {len(seeds)} seeds passed ({describe(totals)})")
    if totals.unknown_seeds:
        out(f"{tool}: UNKNOWN linearizability (search over budget) on {len(totals.unknown_seeds)} seeds, not "
            f"counted as passed for those keys: {totals.unknown_seeds[:20]}")
    return 0
