"""Target-driven sizing: the smallest value of a setting for which the required targets hold.

Theory of operation
-------------------
``novacron size SCENARIO --param cluster.hosts --seeds N --confidence C`` asks: what is the
smallest value ``v`` such that, over seeds ``s .. s+N-1``, at least ``ceil(C * N)`` runs pass
every required target (a target not measured counts as a failure, as in ``check``)?

Each probe of a value is a sweep of ``N`` seeds on the sweep ``Runner`` (local processes or
Dask). A probe stops early once its answer is settled: when more seeds have failed than the
confidence allows (a fail), or enough have passed (a pass). The search assumes that more of the
setting never hurts (monotone pass rate). A passing probe costs at least ``ceil(C * N)`` runs, so
the search first *screens* with one seed: it gallops from the scenario's own value (halving while
it passes, doubling while it fails) and cuts the bracket down to a guess, at one run per value and
as many values per round as there are workers (a k-ary search: two workers cut it in three). Full probes
then gallop additively from the guess (1, 1, 2, 4... away) and bisect, so they sit next to the
answer: the answer is a value whose full probe passes next to one whose full probe fails. The
same monotone assumption lets a probe reuse what it implies: a seed that passed at a smaller
value passes, and one that failed at a larger value fails, without running again; seeds that
failed nearby run first, so a failing probe settles after a few runs. The
binding targets are those that failed at the largest failing value: what more of the setting
fixes.

The search itself (``search``) is a pure function of a probe callable, so the tests check it
against a brute-force scan without running simulations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Probe:
    """One probed value: how many seeds ran, how many passed, and what failed how often."""

    value: int
    seeds_run: int
    seeds_passed: int
    seeds_total: int
    needed: int
    blocking: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.seeds_passed >= self.needed

    @property
    def pass_rate(self) -> float:
        return self.seeds_passed / self.seeds_run if self.seeds_run else 0.0

    def describe(self) -> str:
        state = "pass" if self.ok else "fail"
        settled = "" if self.seeds_run == self.seeds_total else f", settled after {self.seeds_run}"
        top = "; ".join(f"{name} ({count})" for name, count in self.blocking.most_common(3))
        return (f"{self.value:>6}: {self.seeds_passed}/{self.seeds_run} seeds pass ({self.pass_rate:.0%}{settled}) "
                f"-> {state}" + (f"   failing: {top}" if top else ""))


@dataclass(frozen=True, slots=True)
class SizeResult:
    answer: int | None
    """The smallest passing value, or ``None`` when even ``high`` fails."""
    probes: tuple[Probe, ...]
    binding: tuple[str, ...]


def needed_passes(seeds: int, confidence: float) -> int:
    return max(1, math.ceil(confidence * seeds - 1e-9))


def bracket(ok_many: Callable[[list[int]], dict[int, bool]], *, start: int, low: int, high: int,
            additive: bool = False, width: int = 1) -> tuple[int | None, int | None]:
    """(largest failing, smallest passing) value by galloping from ``start``, then bisecting.

    Galloping multiplies (halves or doubles the value) or, with ``additive``, steps 1, 2, 4...
    away from ``start`` (for a start that is already a good guess). ``ok_many`` tests ``width``
    values per round (in parallel, when the caller can): the next gallop steps, or the points
    that cut the bracket into ``width + 1`` parts. ``None`` on a side means no value there:
    every value down to ``low`` passes, or even ``high`` fails.
    """
    value = min(max(start, low), high)
    passing: int | None = value if ok_many([value])[value] else None
    failing: int | None = None if passing is not None else value
    step, rounds = 1, 0
    while (passing is not None and failing is None and passing > low) or \
            (failing is not None and passing is None and failing < high):
        going_down = passing is not None
        edge = passing if going_down else failing
        assert edge is not None
        candidates = []
        for _ in range(width):
            edge = (max(low, edge - step if additive else edge // 2) if going_down
                    else min(high, edge + step if additive else edge * 2))
            rounds += 1
            step = step * 2 if rounds >= 2 else step  # additive: 1, 1, 2, 4... (the guess is usually close)
            if edge not in candidates:
                candidates.append(edge)
        results = ok_many(candidates)
        for candidate in candidates:
            if results[candidate] == going_down:
                if going_down:
                    passing = candidate
                else:
                    failing = candidate
            else:
                if going_down:
                    failing = candidate
                else:
                    passing = candidate
                break
        if (going_down and passing == low) or (not going_down and failing == high):
            break
    if passing is None or failing is None:
        return failing, passing
    while passing - failing > 1:
        points = sorted({failing + (passing - failing) * k // (width + 1) for k in range(1, width + 1)}
                        - {failing, passing})
        results = ok_many(points)
        passing = min([p for p in points if results[p]] + [passing])
        failing = max([p for p in points if not results[p] and p < passing] + [failing])
    return failing, passing


def search(probe: Callable[[int], Probe], *, start: int, low: int, high: int,
           screen: Callable[[list[int]], dict[int, bool]] | None = None, screen_width: int = 1) -> SizeResult:
    """The smallest value whose probe passes (assuming a monotone pass rate); each value probed once.

    With ``screen`` (a cheap test of several values at once, such as one seed each), the screen
    brackets a guess first and the full probes gallop additively from it, so most full probes
    sit next to the answer.
    """
    seen: dict[int, Probe] = {}

    def ok_many(values: list[int]) -> dict[int, bool]:
        for value in values:
            if value not in seen:
                seen[value] = probe(value)
        return {value: seen[value].ok for value in values}

    if screen is not None:
        _, guess = bracket(screen, start=start, low=low, high=high, width=screen_width)
        failing, passing = bracket(ok_many, start=high if guess is None else guess, low=low, high=high,
                                   additive=True)
    else:
        failing, passing = bracket(ok_many, start=start, low=low, high=high)
    binding = _binding(seen.get(high) if passing is None else seen.get(failing) if failing is not None else None)
    return SizeResult(passing, tuple(seen.values()), binding)


def _binding(probe: Probe | None) -> tuple[str, ...]:
    return () if probe is None else tuple(name for name, _ in probe.blocking.most_common())


def probe_from_rows(value: int, rows: list[dict[str, Any]], *, seeds_total: int, needed: int) -> Probe:
    blocking: Counter[str] = Counter()
    passed = 0
    for row in rows:
        if row.get("status") != "ok":
            blocking["the run failed: " + str(row.get("error", ""))[:80]] += 1
        elif row.get("verdict") == "pass":
            passed += 1
        else:
            blocking.update(n for n in str(row.get("blocking", "")).split("; ") if n)
    return Probe(value, len(rows), passed, seeds_total, needed, blocking)


def settled(rows: list[dict[str, Any]], *, seeds_total: int, needed: int) -> bool:
    """True once the remaining seeds cannot change whether the probe passes."""
    passed = sum(1 for r in rows if r.get("status") == "ok" and r.get("verdict") == "pass")
    failed = len(rows) - passed
    return passed >= needed or failed > seeds_total - needed


def plot_size(result: SizeResult, *, param: str, confidence: float, path: str,
              screened: dict[int, bool] | None = None) -> None:
    import matplotlib.pyplot as plt

    probes = sorted(result.probes, key=lambda p: p.value)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    if screened:
        values = sorted(screened)
        ax.scatter(values, [100.0 if screened[v] else 0.0 for v in values], marker="x", color="0.5",
                   label="one-seed screen (pass / fail)")
    ax.plot([p.value for p in probes], [100 * p.pass_rate for p in probes], "o-", label="seeds passing")
    for p in probes:
        if p.seeds_run < p.seeds_total:
            ax.annotate(f"{p.seeds_run}/{p.seeds_total}", (p.value, 100 * p.pass_rate), fontsize=7,
                        textcoords="offset points", xytext=(3, 4))
    ax.axhline(100 * confidence, color="C3", ls=":", lw=1, label=f"required {confidence:.0%}")
    if result.answer is not None:
        ax.axvline(result.answer, color="C2", ls="--", lw=1, label=f"answer: {param} = {result.answer}")
    ax.set(xlabel=param, ylabel="seeds passing every required target (%)", ylim=(-5, 105),
           title=f"novacron size: {param}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- running it: probes as sweeps ------------------------------------------------------------------


def int_setting_range(param: str) -> tuple[int, int, int]:
    """(min, max, default) of an integer scenario setting (``ConfigError`` for anything else)."""
    import dataclasses
    import typing

    from novacron.config import ConfigError
    from novacron.scenario import Scenario

    cls: Any = Scenario
    *sections, leaf = param.split(".")
    for name in sections:
        hints = typing.get_type_hints(cls)
        if name not in hints or not dataclasses.is_dataclass(hints[name]):
            raise ConfigError(f"--param {param}: no section '{name}'; 'novacron scenario' lists the settings")
        cls = hints[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    if leaf not in fields or hints[leaf] is not int:
        raise ConfigError(f"--param {param}: allowed: an integer setting such as cluster.hosts "
                          "('novacron scenario' lists the settings)")
    meta = fields[leaf].metadata
    default = fields[leaf].default
    return int(meta.get("min") or 0), int(meta.get("max") or 10**6), default if isinstance(default, int) else 0


@dataclass
class SizeJob:
    """Probes of one sizing question, with every run's row kept by (value, seed)."""

    scenario_text: str
    origin: str
    base_dir: str | None
    param: str
    seeds: list[int]
    confidence: float
    runner: Any
    """A ``sim.sweep.Runner`` (handed in by the composition root: this module imports no runtime)."""
    progress: bool = False
    rows: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    log: Callable[[str], None] = print
    screened: dict[int, bool] = field(default_factory=dict)

    @property
    def needed(self) -> int:
        return needed_passes(len(self.seeds), self.confidence)

    def _run(self, value: int, seeds: list[int], stop_when: Callable[[list[dict[str, Any]]], bool] | None) -> None:
        points = [(((self.param, value),), seed) for seed in seeds if (value, seed) not in self.rows]
        known = [self.rows[(value, s)] for s in seeds if (value, s) in self.rows]
        if points and not (stop_when and stop_when(known)):
            stop = None if stop_when is None else (lambda new: stop_when(known + new))
            for row in self.runner.run_points(self.scenario_text, self.origin, points, base_dir=self.base_dir,
                                              progress=self.progress, stop_when=stop):
                self.rows[(value, int(row["seed"]))] = row

    def screen(self, values: list[int]) -> dict[int, bool]:
        """One seed at each value, all values at once (one run per worker)."""
        seed = self.seeds[0]
        points = [(((self.param, v),), seed) for v in values if (v, seed) not in self.rows]
        if points:
            for row in self.runner.run_points(self.scenario_text, self.origin, points, base_dir=self.base_dir,
                                              progress=self.progress):
                self.rows[(int(row[f"param.{self.param}"]), seed)] = row
        results = {}
        for v in values:
            row = self.rows[(v, seed)]
            results[v] = self.screened[v] = row.get("status") == "ok" and row.get("verdict") == "pass"
            self.log(f"  screen {self.param} = {v} (seed {seed}): {'pass' if results[v] else 'fail'}")
        return results

    def probe(self, value: int) -> Probe:
        total, needed = len(self.seeds), self.needed
        self._infer(value)
        self._run(value, self._likely_failing_first(value),
                  lambda rows: settled(rows, seeds_total=total, needed=needed))
        rows = [self.rows[(value, s)] for s in self.seeds if (value, s) in self.rows]
        result = probe_from_rows(value, rows, seeds_total=total, needed=needed)
        inferred = sum(1 for r in rows if r.get("inferred"))
        self.log("  " + result.describe() + (f"   ({inferred} seed(s) inferred)" if inferred else ""))
        return result

    @property
    def runs(self) -> int:
        """Simulations actually run (inferred rows excluded)."""
        return sum(1 for row in self.rows.values() if not row.get("inferred"))

    def _infer(self, value: int) -> None:
        """Under the monotone assumption, a seed that passed at a smaller value passes here and one
        that failed its targets at a larger value fails here: neither is run again."""
        for seed in self.seeds:
            if (value, seed) in self.rows:
                continue
            for (v, s), row in sorted(self.rows.items()):
                if s != seed or row.get("status") != "ok" or row.get("inferred"):
                    continue
                if (v < value and row.get("verdict") == "pass") or (v > value and row.get("verdict") == "fail"):
                    self.rows[(value, seed)] = {**row, "inferred": True, f"param.{self.param}": value}
                    break

    def _likely_failing_first(self, value: int) -> list[int]:
        """Seeds that failed at the nearest other value first: they settle a failing probe soonest."""
        def distance(seed: int) -> float:
            failed = [abs(v - value) for (v, s), r in self.rows.items() if s == seed and r.get("verdict") != "pass"]
            return min(failed, default=float("inf"))
        return sorted(self.seeds, key=lambda s: (distance(s), self.seeds.index(s)))


def size(job: SizeJob, *, low: int, high: int, start: int, screen_width: int = 2) -> SizeResult:
    """``screen_width`` values screened at once: match it to the workers."""
    return search(job.probe, start=start, low=low, high=high, screen=job.screen if len(job.seeds) > 1 else None,
                  screen_width=screen_width)
