"""Parameter sweeps: a grid of scenario variants x seeds, run in parallel, merged into one table.

Theory of operation
-------------------
``--param cluster.hosts=10,20`` names a dotted scenario key and its values (each value read as
a TOML scalar, so ``10``, ``0.5``, ``true`` and ``"x"`` mean what they mean in a scenario file;
a bare word is a string). The grid is the Cartesian product of every ``--param`` times the
seeds; every combination is validated as a scenario *before* anything runs, so a misspelt key
or an out-of-range value is the scenario's one-line error.

Each run is a pure function ``run_one(scenario_text, origin, params, seed) -> row`` — picklable,
so it runs the same on a local process pool (default) or a Dask distributed cluster
(``--dask-scheduler tcp://HOST:8786``; the way past one machine). A run that raises becomes a
row with ``status = "failed"`` and the error, and the others complete; a Dask worker that dies
mid-run has its runs retried on another worker by the scheduler. ``stream_sweep`` (what
``novacron sweep`` runs) journals each row as it finishes and skips the runs an interrupted sweep
into the same folder already did (``sim.sweep_journal``); the final table is in run order
whatever order the runs finished in, so the same grid and seeds give the same table.

Each row also carries the run's verdict against the scenario's targets (``verdict``: pass or
fail, ``blocking``: the required targets that failed or were not measured), so ``novacron size``
can search on it. Relative paths in the scenario resolve against ``base_dir`` (the scenario
file's folder, made absolute before the grid is shipped), so a Dask worker finds the trace.
A ``Runner`` keeps one pool (or Dask client) for several grids and can stop a grid early.
"""

from __future__ import annotations

import copy
import itertools
import os
import sys
import tomllib
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
from tqdm import tqdm

from novacron.app.eventstore import event_log_sha256
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import parse_scenario, scenario_targets
from novacron.slo import evaluate
from sim.run import simulate, simulate_verdict_only
from sim.sweep_journal import SweepJournal, failed_rows, grid_fingerprint, write_table

Params = tuple[tuple[str, Any], ...]
Row = dict[str, Any]
PARAM_PREFIX = "param."


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"cluster.hosts=10,20"`` -> ``("cluster.hosts", [10, 20])``."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ConfigError(f"--param {text!r}: expected KEY=V1,V2,... (for example cluster.hosts=10,20)")
    return key, [_toml_value(v.strip()) for v in values.split(",")]


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def with_overrides(data: dict[str, Any], params: Params) -> dict[str, Any]:
    """A copy of a scenario's TOML data with dotted keys set."""
    out = copy.deepcopy(data)
    for key, value in params:
        table = out
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents):
            child = table.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--param {key}: {'.'.join(parents[:depth + 1])} is a setting, not a section")
            table = child
        table[leaf] = value
    return out


@dataclass(frozen=True, slots=True)
class SweepRun:
    index: int
    params: Params
    seed: int

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params) or "no params"
        return f"run {self.index} (seed {self.seed}, {shown})"


def build_grid(scenario_text: str, origin: str, params: Sequence[tuple[str, list[Any]]],
               seeds: Sequence[int], *, base_dir: str | None = None) -> list[SweepRun]:
    """Every combination x seed, each validated as a scenario (raises ``ConfigError``)."""
    data = tomllib.loads(scenario_text)
    keys = [k for k, _ in params]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--param: a key is given twice ({', '.join(keys)})")
    combos = [tuple(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in params))]
    for combo in combos:
        parse_scenario(with_overrides(data, combo), origin=f"{origin} with {_shown(combo)}", base_dir=base_dir)
    return [SweepRun(i, combo, seed) for i, (combo, seed) in enumerate(itertools.product(combos, seeds))]


def _shown(params: Params) -> str:
    return " ".join(f"{k}={v!r}" for k, v in params) or "no params"


def run_one(scenario_text: str, origin: str, params: Params, seed: int, index: int,
            base_dir: str | None = None, early_stop: bool = False) -> Row:
    """Simulate one grid point; never raises (a failure is a row saying so).

    With ``early_stop`` the run ends once a required target has failed for good
    (``sim.early_stop``); its row says "failed early at t_s=..." and holds the metrics so far.
    """
    row: Row = {"run": index, "seed": seed, **{PARAM_PREFIX + k: v for k, v in params},
                "status": "ok", "error": ""}
    try:
        scenario = parse_scenario(with_overrides(tomllib.loads(scenario_text), params), origin=origin,
                                  base_dir=base_dir)
        targets = scenario_targets(scenario)[0]
        if early_stop:
            ctx, stop = simulate_verdict_only(scenario, seed, targets)
        else:
            ctx, stop = simulate(scenario, seed), None
        metrics = compute_metrics(ctx.log)
        metrics.update(ctx.config_metrics)
        row.update(metrics)
        row["events_sha256"] = event_log_sha256(ctx.log)  # the witness that a seed repeats
        if stop is not None and stop.stopped:
            blocking_names = [t.name for t in stop.failed]
            row["early_stop"] = stop.describe()
        else:
            blocking_names = [r.target.name for r in evaluate(metrics, targets).blocking()]
        row["verdict"] = "fail" if blocking_names else "pass"
        row["blocking"] = "; ".join(blocking_names)
    except Exception as exc:  # the sweep reports it and goes on with the other runs
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


@dataclass(frozen=True)
class SweepResult:
    table: pd.DataFrame
    failed: list[Row]


def run_sweep(scenario_text: str, origin: str, grid: Sequence[SweepRun], *, workers: int | None = None,
              dask_scheduler: str | None = None, progress: bool = False, base_dir: str | None = None,
              early_stop: bool = False) -> SweepResult:
    """Run the grid on a local process pool, or on the Dask cluster at ``dask_scheduler``."""
    with Runner(workers=workers, dask_scheduler=dask_scheduler, early_stop=early_stop) as runner:
        rows = runner.run(scenario_text, origin, grid, base_dir=base_dir, progress=progress)
    return SweepResult(pd.DataFrame(rows), [r for r in rows if r["status"] != "ok"])


def _bar(total: int, progress: bool, initial: int = 0) -> tqdm[Any]:
    return tqdm(total=total, initial=initial, unit="run", desc="sweep", disable=not progress, file=sys.stderr,
                leave=False)


def check_dask_address(address: str) -> None:
    """A one-line ``ConfigError`` unless Dask reads ``address`` as a scheduler address (``[tcp://]HOST:PORT``
    and the other schemes Dask knows), checked before anything is written or connected to."""
    from distributed.comm.addressing import get_address_host, parse_address
    from distributed.comm.registry import get_backend

    try:
        get_backend(parse_address(address, strict=False)[0])
        get_address_host(address)
    except ValueError as exc:
        raise ConfigError(f"--dask-scheduler {address!r}: not a scheduler address ({exc}); allowed: "
                          "[tcp://]HOST:PORT, e.g. tcp://10.0.0.5:8786") from None


class Runner:
    """One local process pool or Dask client, reused by every grid run through it.

    Both are driven through the ``concurrent.futures`` interface (Dask's ``Client.get_executor``),
    so there is one code path. At most ``2 x`` the workers' slots are submitted at a time: results
    are taken as they finish and nothing piles up, whatever the size of the grid.
    """

    def __init__(self, *, workers: int | None = None, dask_scheduler: str | None = None,
                 early_stop: bool = False) -> None:
        self.workers, self.dask_scheduler = workers, dask_scheduler
        self.early_stop = early_stop  # runs end once a required target failed for good: verdicts only
        self._executor: Executor | None = None
        self._client: Any = None
        self._slots = 1

    def __enter__(self) -> Runner:
        if self.dask_scheduler is not None:
            from distributed import Client

            check_dask_address(self.dask_scheduler)
            try:
                self._client = Client(self.dask_scheduler)  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise ConfigError(f"--dask-scheduler {self.dask_scheduler}: cannot reach it ({exc}); allowed: the "
                                  "address of a running Dask scheduler") from None
            self._executor = self._client.get_executor(pure=False)
            # The threads of the workers there now (a cluster that grows later gets no deeper queue).
            self._slots = max(1, sum(self._client.nthreads().values()))
        else:
            self._executor = ProcessPoolExecutor(max_workers=self.workers)
            self._slots = self.workers or os.cpu_count() or 1
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._client is not None:
            self._executor = None  # its futures are the client's: closing the client cancels them
            self._client.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def stream(self, scenario_text: str, origin: str, grid: Sequence[SweepRun], *, base_dir: str | None = None,
               progress: bool = False, already_done: int = 0) -> Generator[Row, None, None]:
        """Each run's row as soon as it finishes (in any order); closing the iterator cancels the
        runs still in flight. The progress bar counts ``already_done`` runs as done."""
        pending = iter(grid)
        in_flight: dict[Future[Row], SweepRun] = {}
        with _bar(already_done + len(grid), progress, initial=already_done) as bar:
            try:
                while True:
                    for run in itertools.islice(pending, max(0, 2 * self._slots - len(in_flight))):
                        in_flight[self._submit(scenario_text, origin, run, base_dir)] = run
                    if not in_flight:
                        return
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        row = _result_or_failure(future, in_flight.pop(future))
                        bar.update()
                        yield row
            finally:
                for future in in_flight:
                    future.cancel()

    def run(self, scenario_text: str, origin: str, grid: Sequence[SweepRun], *, base_dir: str | None = None,
            progress: bool = False, stop_when: Callable[[list[Row]], bool] | None = None) -> list[Row]:
        """Rows in run order; with ``stop_when``, runs not started once it holds are cancelled."""
        rows: list[Row] = []
        stream = self.stream(scenario_text, origin, grid, base_dir=base_dir, progress=progress)
        try:
            for row in stream:
                rows.append(row)
                if stop_when is not None and stop_when(rows):
                    break
        finally:
            stream.close()
        return sorted(rows, key=lambda r: int(r["run"]))

    def run_points(self, scenario_text: str, origin: str, points: Sequence[tuple[Params, int]], *,
                   base_dir: str | None = None, progress: bool = False,
                   stop_when: Callable[[list[Row]], bool] | None = None) -> list[Row]:
        """``run`` over (params, seed) points, numbered in order (what ``novacron size`` probes)."""
        grid = [SweepRun(index, params, seed) for index, (params, seed) in enumerate(points)]
        return self.run(scenario_text, origin, grid, base_dir=base_dir, progress=progress, stop_when=stop_when)

    def _submit(self, scenario_text: str, origin: str, run: SweepRun, base_dir: str | None) -> Future[Row]:
        assert self._executor is not None, "use Runner as a context manager"
        return self._executor.submit(run_one, scenario_text, origin, run.params, run.seed, run.index, base_dir,
                                     self.early_stop)


def _result_or_failure(future: Any, run: SweepRun) -> Row:
    """The run's row; a worker that died (not a run that failed) still gives a row."""
    try:
        row: Row = future.result()
        return row
    except Exception as exc:
        return {"run": run.index, "seed": run.seed, **{PARAM_PREFIX + k: v for k, v in run.params},
                "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


@dataclass(frozen=True)
class StreamedSweep:
    table_path: Path
    rows: int
    skipped: int
    """Runs that already had an ``ok`` row in ``OUT`` (a resumed sweep) and were not run again."""
    failed: list[Row]


def stream_sweep(scenario_text: str, origin: str, grid: Sequence[SweepRun], out_dir: Path, *,
                 workers: int | None = None, dask_scheduler: str | None = None, progress: bool = False,
                 base_dir: str | None = None, early_stop: bool = False, fresh: bool = False,
                 on_row: Callable[[Row], None] | None = None) -> StreamedSweep:
    """Run the grid into ``OUT``: each row journaled as it finishes, runs already done skipped,
    then ``OUT/sweep.parquet`` in run order (``sim.sweep_journal``). ``on_row`` sees each new row."""
    fingerprint = grid_fingerprint(scenario_text, [(r.index, r.params, r.seed) for r in grid], early_stop)
    with SweepJournal(out_dir, fingerprint, fresh=fresh) as journal:
        todo = [run for run in grid if run.index not in journal.done]
        if todo:
            with Runner(workers=workers, dask_scheduler=dask_scheduler, early_stop=early_stop) as runner:
                for row in runner.stream(scenario_text, origin, todo, base_dir=base_dir, progress=progress,
                                         already_done=len(grid) - len(todo)):
                    journal.append(row)
                    if on_row is not None:
                        on_row(row)
    path, rows = write_table(out_dir)
    return StreamedSweep(path, rows, len(grid) - len(todo), failed_rows(path))


def describe_failures(failed: Iterable[Row]) -> list[str]:
    lines = []
    for row in failed:
        params = ", ".join(f"{k.removeprefix(PARAM_PREFIX)}={v!r}" for k, v in row.items()
                           if k.startswith(PARAM_PREFIX))
        lines.append(f"run {row['run']} failed (seed {row['seed']}, {params or 'no params'}): {row['error']}")
    return lines
