from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sim.vopr_seeds import SeedOutcome, SeedTotals, run_until_failure, write_trace_file


@dataclass(frozen=True)
class _Plan:
    def describe(self) -> str:
        return "a plan"


@dataclass
class _Outcome(SeedOutcome[_Plan]):
    ops: int = 0

    COUNTED: ClassVar[tuple[str, ...]] = ("steps", "ops")

    def replay_command(self) -> str:
        return f"replay {self.seed}"


def _run(seed: int) -> _Outcome:
    return _Outcome(seed, seed != 3, _Plan(), violation="boom" if seed == 3 else None, trace=["t1", "t2"],
                    steps=10 * seed, ops=seed, unknown_keys=("k",) if seed == 1 else ())


def _describe(totals: SeedTotals) -> str:
    return f"{totals.seeds} seeds, {totals.counts['steps']} steps, {totals.counts['ops']} ops"


def test_passing_seeds_are_summed_and_unknown_seeds_listed() -> None:
    lines: list[str] = []
    assert run_until_failure([0, 1, 2], _run, tool="t", progress=False, write_trace=lambda _: Path("x"),
                             describe=_describe, out=lines.append) == 0
    assert lines == ["t: 3 seeds passed (3 seeds, 30 steps, 3 ops)",
                     "t: UNKNOWN linearizability (search over budget) on 1 seeds, not counted as passed for "
                     "those keys: [1]"]


def test_the_first_failure_stops_the_run_and_is_reported_with_its_trace_file() -> None:
    lines: list[str] = []
    ran: list[int] = []

    def run(seed: int) -> _Outcome:
        ran.append(seed)
        return _run(seed)

    assert run_until_failure([2, 3, 4], run, tool="t", progress=False, write_trace=lambda r: Path(f"s{r.seed}.txt"),
                             describe=_describe, out=lines.append) == 1
    assert ran == [2, 3]
    assert lines == ["t: seed 3 FAILED: boom", "  plan: a plan", "  last events:", "    t1", "    t2",
                     "  replay: replay 3", "  full trace: s3.txt"]


def test_the_trace_file_names_the_plant_and_holds_violation_replay_and_every_line(tmp_path: Path) -> None:
    traced = _Outcome(3, False, _Plan(), violation="boom", trace=["t1", "t2"], plant="quorum-2f")
    path = write_trace_file(tmp_path / "traces", "seed-3", traced)
    assert path == tmp_path / "traces" / "seed-3-quorum-2f.txt"
    assert path.read_text() == "seed 3: boom\nreplay: replay 3\nt1\nt2\n"
