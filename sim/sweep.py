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
row with ``status = "failed"`` and the error, and the others complete. Rows are sorted by run
index whatever order they finish in, so the same grid and seeds give the same table.
"""

from __future__ import annotations

import copy
import itertools
import sys
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from novacron.app.eventstore import event_log_sha256
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import parse_scenario
from sim.run import simulate

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
               seeds: Sequence[int]) -> list[SweepRun]:
    """Every combination x seed, each validated as a scenario (raises ``ConfigError``)."""
    data = tomllib.loads(scenario_text)
    keys = [k for k, _ in params]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--param: a key is given twice ({', '.join(keys)})")
    combos = [tuple(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in params))]
    for combo in combos:
        parse_scenario(with_overrides(data, combo), origin=f"{origin} with {_shown(combo)}")
    return [SweepRun(i, combo, seed) for i, (combo, seed) in enumerate(itertools.product(combos, seeds))]


def _shown(params: Params) -> str:
    return " ".join(f"{k}={v!r}" for k, v in params) or "no params"


def run_one(scenario_text: str, origin: str, params: Params, seed: int, index: int) -> Row:
    """Simulate one grid point; never raises (a failure is a row saying so)."""
    row: Row = {"run": index, "seed": seed, **{PARAM_PREFIX + k: v for k, v in params},
                "status": "ok", "error": ""}
    try:
        scenario = parse_scenario(with_overrides(tomllib.loads(scenario_text), params), origin=origin)
        ctx = simulate(scenario, seed)
        metrics = compute_metrics(ctx.log)
        metrics.update(ctx.config_metrics)
        row.update(metrics)
        row["events_sha256"] = event_log_sha256(ctx.log)  # the witness that a seed repeats
    except Exception as exc:  # the sweep reports it and goes on with the other runs
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


@dataclass(frozen=True)
class SweepResult:
    table: pd.DataFrame
    failed: list[Row]


def run_sweep(scenario_text: str, origin: str, grid: Sequence[SweepRun], *, workers: int | None = None,
              dask_scheduler: str | None = None, progress: bool = False) -> SweepResult:
    """Run the grid on a local process pool, or on the Dask cluster at ``dask_scheduler``."""
    if dask_scheduler is not None:
        rows = _run_on_dask(scenario_text, origin, grid, dask_scheduler, progress)
    else:
        rows = _run_on_pool(scenario_text, origin, grid, workers, progress)
    ordered: list[Row] = sorted(rows, key=lambda r: int(r["run"]))
    return SweepResult(pd.DataFrame(ordered), [r for r in ordered if r["status"] != "ok"])


def _bar(total: int, progress: bool) -> tqdm[Any]:
    return tqdm(total=total, unit="run", desc="sweep", disable=not progress, file=sys.stderr, leave=False)


def _run_on_pool(scenario_text: str, origin: str, grid: Sequence[SweepRun], workers: int | None,
                 progress: bool) -> list[Row]:
    rows: list[Row] = []
    with ProcessPoolExecutor(max_workers=workers) as pool, _bar(len(grid), progress) as bar:
        futures: dict[Future[Row], SweepRun] = {
            pool.submit(run_one, scenario_text, origin, run.params, run.seed, run.index): run for run in grid}
        for future in as_completed(futures):
            rows.append(_result_or_failure(future, futures[future]))
            bar.update()
    return rows


def _run_on_dask(scenario_text: str, origin: str, grid: Sequence[SweepRun], address: str,
                 progress: bool) -> list[Row]:
    from distributed import Client
    from distributed import as_completed as dask_as_completed

    rows: list[Row] = []
    client = Client(address)  # type: ignore[no-untyped-call]
    with client, _bar(len(grid), progress) as bar:
        futures = {client.submit(run_one, scenario_text, origin, run.params, run.seed, run.index, pure=False): run
                   for run in grid}
        for future in dask_as_completed(list(futures)):  # type: ignore[no-untyped-call]
            rows.append(_result_or_failure(future, futures[future]))
            bar.update()
    return rows


def _result_or_failure(future: Any, run: SweepRun) -> Row:
    """The run's row; a worker that died (not a run that failed) still gives a row."""
    try:
        row: Row = future.result()
        return row
    except Exception as exc:
        return {"run": run.index, "seed": run.seed, **{PARAM_PREFIX + k: v for k, v in run.params},
                "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def write_table(table: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "sweep.parquet"
    tmp = path.with_name(path.name + ".tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def describe_failures(failed: Iterable[Row]) -> list[str]:
    lines = []
    for row in failed:
        params = ", ".join(f"{k.removeprefix(PARAM_PREFIX)}={v!r}" for k, v in row.items()
                           if k.startswith(PARAM_PREFIX))
        lines.append(f"run {row['run']} failed (seed {row['seed']}, {params or 'no params'}): {row['error']}")
    return lines
