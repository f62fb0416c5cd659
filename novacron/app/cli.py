"""The ``novacron`` command: the composition root that wires a runtime to the core.

This is the one module of the core allowed to reach the runtimes; it imports them lazily, inside
the command that needs them, so ``import novacron`` stays free of SimPy, libvirt and Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import math
import re
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from novacron.config import ConfigError

if TYPE_CHECKING:
    from novacron.cache.evaluate import EvalResult
    from novacron.cache.traces import Request

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

EXTRAS = {"distributed": "dask", "dask": "dask", "redis": "redis", "libvirt": "real", "ortools": "opt",
          "prometheus_client": "real", "statsmodels": "anomaly", "river": "anomaly",
          "nbclient": "notebooks", "nbformat": "notebooks", "jupyter_client": "notebooks", "ipykernel": "notebooks"}
"""Optional imports and the extra (``pip install 'novacron[EXTRA]'``) that provides each."""

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


@contextlib.contextmanager
def as_command_error(*errors: type[Exception]) -> Iterator[None]:
    """Raise any of ``errors`` (a component's bad-input error) again as a ``CommandError``."""
    try:
        yield
    except errors as exc:
        raise CommandError(str(exc)) from None


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command's --help (exit 2)."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        # Any "-<digit>..." is a value, not an option (no option starts with a digit): argparse's own
        # pattern knows only plain numbers, so '--duration -1h' read as a missing value and the check
        # that names the value and what is allowed never saw it.
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> typing.NoReturn:
        print(f"novacron: error: {' '.join(message.split())} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def seed_arg(text: str) -> int:
    """The argparse type of every seed flag, so a bad seed is a usage error before anything runs."""
    from novacron.seeding import MAX_SEED, check_seed

    try:
        return check_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: allowed: an integer from 0 to {MAX_SEED}") from None


def _command(sub: argparse._SubParsersAction, name: str, handler: Handler, *,  # type: ignore[type-arg]
             help: str) -> argparse.ArgumentParser:
    """Add the command ``name``, run by ``handler``; its --help description is the handler's
    docstring, so what a command does is written once, where it is done."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=inspect.getdoc(handler))
    parser.set_defaults(handler=handler)
    return parser


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default=None,
                   help="a scenario TOML file or the name of a built-in scenario (default: 'default')")
    p.add_argument("--seed", type=seed_arg, default=None,
                   help="run seed (default: the scenario's 'seed'); the same seed reproduces the same event log")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory to write (default: runs/<scenario>-seed<N>)")
    _add_progress_args(p)
    p.add_argument("--runtime", choices=("sim", "real"), default="sim",
                   help="sim: the SimPy model (default); real: libvirt hosts, real guests, manager "
                        "processes and Redis, on the wall clock (root and the lab; see README)")
    p.add_argument("--hosts", nargs="+", default=(), metavar="URI",
                   help="with --runtime real: libvirt URIs of the hosts (default: [runtime] hosts, else the lab's)")
    p.add_argument("--duration", default=None, metavar="TIME",
                   help="simulated time, overriding the scenario's duration_s: seconds, or a number with "
                        "s, m, h or d (e.g. 30d for a month; the log streams to disk, memory stays flat)")


def _add_progress_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal (e.g. a long run's log file)")


def wants_progress(args: argparse.Namespace) -> bool:
    return bool(args.progress or (not args.no_progress and sys.stderr.isatty()))


DURATION_UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(text: str) -> float:
    """``30d``, ``24h``, ``90m``, ``45s`` or plain seconds; a one-line error otherwise."""
    raw = text.strip().lower()
    scale = DURATION_UNITS_S.get(raw[-1:])
    number = raw[:-1] if scale is not None else raw
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        value = float("nan")
    if not 1.0 <= value <= 366 * 86400.0:  # NaN fails too
        raise CommandError(f"--duration {text}: not a simulated time; allowed: 1 s to 366 d, as seconds or a "
                           "number with s, m, h or d (e.g. 30d)")
    return value


def check_out_file(path: Path, flag: str) -> None:
    """An output file's place, checked before any work: not a folder, and in a folder that exists."""
    if path.is_dir() or not path.parent.is_dir():
        problem = "is a folder" if path.is_dir() else f"the folder {path.parent} does not exist"
        raise CommandError(f"{flag} {path}: {problem}; allowed: a file in an existing folder")


def create_out_dir(path: Path, flag: str = "--out") -> Path:
    """The output folder of a command, created before any work, so a bad ``--out`` costs nothing."""
    if path.exists() and not path.is_dir():
        raise CommandError(f"{flag} {path}: is a file; allowed: a folder (an existing one or a new one)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc}); allowed: an existing "
                           "folder or a new one in a writable place") from None
    return path


def _add_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="also write the verdict as JUnit XML (one testcase per target) for CI")
    p.add_argument("--json", action="store_true",
                   help="print the verdict as JSON on stdout (the run's progress lines go to stderr)")
    p.add_argument("--allow-unmeasured", action="store_true",
                   help="a required target the run did not measure does not fail the check")


def cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario in the SimPy model. Writes events.parquet, summary.json and report.html to the run
    directory. The first line printed names the seed."""
    from novacron.federation.metrics import datacenter_table
    from novacron.slo import format_table
    from novacron.storage.metrics import replication_table

    if args.partitions is not None or args.dask_scheduler is not None:
        return _run_partitioned(args)
    result = _run(args)
    print(format_table(result.verdict))
    datacenters = datacenter_table(result.summary["metrics"])
    if datacenters:
        print(f"\n{datacenters}")
    replication = replication_table(result.summary["metrics"])
    if replication:
        print(f"\ncross-datacenter replication of the storage pool (both modes, same writes):\n{replication}")
    _print_edge_services(result)
    print(f"\nrun directory: {result.run_dir}  (events.parquet, summary.json, report.html)")
    return EXIT_OK


def _print_edge_services(result) -> None:  # type: ignore[no-untyped-def]
    from novacron.edge.metrics import run_service_table

    table = run_service_table(result.summary["metrics"], result.verdict)
    if table:
        print(f"\nedge services (per-interval M/G/c model; target and verdict in brackets):\n{table}")


def _run_partitioned(args: argparse.Namespace) -> int:
    """``run --partitions/--dask-scheduler``: the federation alone, one logical process per datacenter
    (``sim.federation.windows``); prints the merged log's hash, the layout and the synchronisation."""
    from novacron.federation.metrics import datacenter_table
    from novacron.scenario import resolve_scenario
    from sim.federation.windows import PartitionError, run_partitioned
    from sim.sweep import check_dask_address

    if args.dask_scheduler is not None:
        check_dask_address(args.dask_scheduler)
    duration_s = None if args.duration is None else parse_duration_s(args.duration)
    scenario, _ = resolve_scenario(args.scenario, duration_s=duration_s)
    seed = scenario.seed if args.seed is None else args.seed
    names = scenario.federation.datacenters
    partitions = args.partitions if args.partitions is not None else len(names)
    out = args.out or Path("runs") / f"{scenario.name}-seed{seed}-partitioned"
    print(f"novacron run: seed {seed} · scenario {scenario.name} · federation partitioned by datacenter "
          f"({len(names)} logical processes on {min(partitions, len(names))} partition(s), "
          f"{'Dask scheduler ' + args.dask_scheduler if args.dask_scheduler else 'this process'})", flush=True)
    client = None
    if args.dask_scheduler is not None:
        from distributed import Client

        try:
            client = Client(args.dask_scheduler, timeout=10)  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise CommandError(f"--dask-scheduler {args.dask_scheduler}: cannot reach it ({exc}); allowed: the "
                               "address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786") from None
    try:
        with as_command_error(PartitionError):
            run = run_partitioned(scenario, seed, out, partitions=partitions, client=client)
    finally:
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]
    layout = " | ".join(", ".join(names[dc] for dc in group) for group in run.layout)
    print(f"layout: {layout}\nlookahead (window) {run.lookahead_s * 1000:.3f} ms · {run.windows} windows · "
          f"{run.messages} messages between partitions · sync overhead {run.sync_overhead_ms_per_window:.3f} ms "
          f"per window\nevents {run.events} · event log sha256 {run.sha256}")
    placed = run.metrics.get("federation.vms_placed", 0.0)
    print(f"federation: {placed:.0f} of {run.metrics.get('federation.vms_requested', 0.0):.0f} VMs placed\n"
          f"{datacenter_table(run.metrics)}\nrun directory: {out}  (events.parquet, partitions/)")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Run a scenario and check every required target: the command to put in CI. Exit 0: all required targets
    pass; 1: a required target failed or was not measured; 2: bad input or usage; 3: internal error (the
    traceback is written to the run directory)."""
    from novacron.app.verdict_output import check_json, write_junit
    from novacron.slo import Verdict, format_table

    if args.junit is not None:
        check_out_file(args.junit, "--junit")
    result = _run(args, quiet=args.json)
    verdict, allow = result.verdict, args.allow_unmeasured
    if args.junit is not None:
        try:
            write_junit(args.junit, verdict, suite_name=f"novacron check {result.summary['scenario']} "
                        f"seed {result.summary['seed']}", allow_unmeasured=allow)
        except OSError as exc:
            raise CommandError(f"--junit {args.junit}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        print(check_json(verdict, run_dir=result.run_dir, scenario=result.summary["scenario"],
                         seed=result.summary["seed"], metrics=result.summary["metrics"], allow_unmeasured=allow))
    else:
        print(format_table(verdict))
    blocking = verdict.blocking(allow_unmeasured=allow)
    if blocking:
        print(f"\n{len(blocking)} required target(s) not met:", file=sys.stderr)
        for r in blocking:
            got = "not measured" if r.verdict is Verdict.NOT_MEASURED else \
                f"measured {r.measured:.4g} {r.target.unit}".rstrip()
            print(f"  {r.target.name} ({r.target.metric}): {got}, needs {r.target.describe_threshold()}",
                  file=sys.stderr)
        return EXIT_FAILED
    if not args.json:
        unmeasured = " (unmeasured targets allowed)" if allow and verdict.not_measured else ""
        print(f"\nall required targets met{unmeasured}")
    return EXIT_OK


def _run(args: argparse.Namespace, *, quiet: bool = False):  # type: ignore[no-untyped-def]
    from novacron.app.runtimes import select_runtime
    from novacron.scenario import resolve_scenario
    from novacron.slo import admission_line

    duration_s = None if args.duration is None else parse_duration_s(args.duration)
    scenario, text = resolve_scenario(args.scenario, duration_s=duration_s)
    seed = scenario.seed if args.seed is None else args.seed
    with as_command_error(ValueError):
        runtime = select_runtime(getattr(args, "runtime", "sim"), tuple(getattr(args, "hosts", ())))
    runtime.check(scenario)
    suffix = "" if runtime.name == "sim" else f"-{runtime.name}"
    out = create_out_dir(args.out or Path("runs") / f"{scenario.name}-seed{seed}{suffix}")
    args.run_dir = out  # where an internal error's traceback goes
    stream = sys.stderr if quiet else sys.stdout
    f = scenario.federation
    federation = (f" · federation: {len(f.datacenters)} datacenters x {f.clusters_per_datacenter} cluster(s) x "
                  f"{f.hosts_per_cluster} hosts, {f.vms} VMs" if f.enabled else "")
    print(f"novacron run: seed {seed} · scenario {scenario.name} · {scenario.cluster.hosts} hosts · "
          f"{scenario.workload.vms} VMs{federation} · {runtime.describe(scenario)}", flush=True, file=stream)
    progress = wants_progress(args)
    result = runtime.run(scenario, seed, out, text, progress=progress,
                         process_exits_after=getattr(args, "process_exits_after", False))
    admission = admission_line(result.summary["metrics"])
    if admission:
        print(admission, file=stream)
    return result


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.html (self-contained) and report.md for a run."""
    from novacron.app.analysis import RunNotFound
    from novacron.app.report import write_report

    with as_command_error(RunNotFound):
        html_path = write_report(args.run_dir)
    print(f"report: {html_path}")
    return EXIT_OK


def cmd_export_metrics(args: argparse.Namespace) -> int:
    """Write a run's telemetry as OpenMetrics text: per-host (CPU served, asked and waiting, memory, VMs,
    power), per-VM (migration bytes and downtime), cluster, Raft (terms, elections, crashes) and cache (hits,
    misses, failures per tier) series, derived from its event log, so a simulated run loads into the same
    dashboards as a real one (backfill: promtool tsdb create-blocks-from openmetrics FILE DIR)."""
    from novacron.app.eventstore import SchemaVersionError
    from novacron.app.export_metrics import export_run

    log = args.run_dir / "events.parquet"
    if not log.is_file():
        raise CommandError(f"{args.run_dir}: no events.parquet there; allowed: a run directory written by "
                           "'novacron run'")
    if not math.isfinite(args.start_unix_s) or args.start_unix_s < 0:
        raise CommandError(f"--start-unix-s {args.start_unix_s}: allowed: a Unix time in seconds, 0 or more")
    out: Path = args.out or args.run_dir / "metrics.openmetrics.txt"
    check_out_file(out, "--out")
    partial = out.with_name(out.name + ".partial")
    import pyarrow as pa

    try:
        f = partial.open("w")
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write ({exc.strerror or exc}); allowed: a file in a writable "
                           "folder") from None
    try:
        with f:
            written = export_run(args.run_dir, f, start_unix_s=args.start_unix_s)
    except (SchemaVersionError, pa.ArrowInvalid, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise CommandError(f"{log}: not a NovaCron event log ({_one_line(exc)})") from None
    partial.replace(out)
    print(f"{written} samples: {out}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two run directories of the same scenario (typically its simulation and a real run): every
    metric with the relative difference of B from A, every target's verdicts and whether they agree, the
    migrations matched by VM (the planner's prediction, A's and B's measured total time and downtime), and a
    plot. Exit 0: every verdict agrees; 1: a verdict disagrees (listed last); 2: bad input (a missing or
    unreadable run directory, runs of different scenarios)."""
    import json

    from novacron.app.compare import (
        CompareError,
        check_plot_path,
        compare_runs,
        format_comparison,
        load_pair,
        write_plot,
    )

    with as_command_error(CompareError):
        if args.plot is not None and not args.no_plot:
            check_plot_path(args.plot)
        run_a, run_b = load_pair(args.run_a, args.run_b)
    comparison = compare_runs(run_a, run_b)
    plot = None
    if not args.no_plot:
        plot = args.plot or Path("runs") / f"compare-{run_a.path.resolve().name}-vs-{run_b.path.resolve().name}.png"
        create_out_dir(plot.parent, "--plot")
        write_plot(comparison, plot)
    if args.json:
        print(json.dumps({**comparison.as_dict(), "plot": None if plot is None else str(plot)}, indent=2))
    else:
        print(format_comparison(comparison))
        if plot is not None:
            print(f"plot: {plot}")
    return EXIT_OK if comparison.agree else EXIT_FAILED


def cmd_scenario(args: argparse.Namespace) -> int:
    """Without NAME: every setting with its default, allowed values and meaning. With NAME: the built-in
    scenario's TOML."""
    from novacron.config import describe_section
    from novacron.scenario import Scenario, builtin_scenario_names, builtin_scenario_text

    if args.name:
        if args.name not in builtin_scenario_names():
            raise CommandError(f"no built-in scenario {args.name!r}; built-in: "
                               f"{', '.join(builtin_scenario_names())}")
        print(builtin_scenario_text(args.name), end="")
        return EXIT_OK
    print("built-in scenarios: " + ", ".join(builtin_scenario_names()))
    print("\nsettings (key = default  (allowed) meaning):")
    for line in describe_section(Scenario):
        print("  " + line)
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    """The target catalogue (required targets and reference figures), the settings a run echoes, and every
    metric name with its unit and meaning. With SCENARIO: the targets that scenario is checked against."""
    from novacron.metrics import METRICS
    from novacron.slo import BENCHMARK_TARGETS, CATALOGUE, SETTINGS

    if args.scenario is not None:
        from novacron.scenario import resolve_scenario, scenario_targets

        targets, not_applicable = scenario_targets(resolve_scenario(args.scenario)[0])
        print(f"targets of {args.scenario} (catalogue with its [targets] applied):")
    else:
        targets, not_applicable = CATALOGUE, ()
        print("the target catalogue (a scenario's [targets] overrides or adds to it):")
    for t in targets:
        print(f"  {t.role.value:9s}  {t.name}: {t.metric} {t.describe_threshold()}  (applies with: {t.capability})")
    if not_applicable:
        print(f"  not applicable to this scenario: {', '.join(not_applicable)}")
    print("\nchecked by the benchmarks, not by a run (wall-clock performance):")
    for t in BENCHMARK_TARGETS:
        print(f"  {t.name}: {t.metric} {t.describe_threshold()}")
    print("\nsettings a run echoes (shown in the settings block, never targets): "
          + ", ".join(s.metric for s in SETTINGS))
    print("\nmetrics (any can be a target: [targets] \"NAME\" = { comparator = \"<\", threshold = 10, "
          "role = \"required\" }):")
    width = max(len(name) for name in METRICS)
    for info in METRICS.values():
        print(f"  {info.name.ljust(width)}  {(info.unit or '-').ljust(5)}  {info.meaning}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Run benchmarks/bench_*.py with pytest-benchmark, save the JSON, and compare each tracked ratio (a
    benchmark over its baseline measured in the same run, medians over rounds) with --compare."""
    import json
    import subprocess
    from datetime import UTC, datetime

    from novacron.benchratio import compare

    bench_dir = Path(args.benchmarks)
    if not bench_dir.is_dir():
        raise CommandError(f"{bench_dir}: no benchmarks folder here; run from a NovaCron checkout or pass --benchmarks")
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise CommandError(f"--tolerance {args.tolerance}: allowed: a number >= 0 (0.30: a ratio may grow 30 %)")
    previous = _read_bench_json(args.compare) if args.compare else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    save = args.save or Path(".benchmarks") / f"bench-{stamp}.json"
    save.parent.mkdir(parents=True, exist_ok=True)
    # addopts is replaced: the project's default carries --benchmark-skip for the unit tests.
    command = [sys.executable, "-m", "pytest", str(bench_dir), "-p", "no:cacheprovider", "-q",
               "-o", "addopts=--strict-markers -ra", "-o", f"testpaths={bench_dir}",
               "-o", "python_files=bench_*.py", "--benchmark-enable",
               "--benchmark-only", f"--benchmark-json={save}", "--benchmark-min-rounds=5", *args.pytest_args]
    if args.k:
        command += ["-k", args.k]
    status = subprocess.call(command)
    if status != 0:
        print(f"novacron bench: the benchmarks failed (pytest exit {status})", file=sys.stderr)
        return EXIT_FAILED
    current = json.loads(save.read_text())
    comparisons = compare(previous, current, args.tolerance)
    print(f"\nsaved: {save}")
    for c in comparisons:
        print("  " + c.describe())
    regressed = [c for c in comparisons if c.regressed]
    if regressed:
        print(f"{len(regressed)} tracked ratio(s) regressed by more than {args.tolerance:.0%}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _base_dir(scenario_arg: str | None) -> str | None:
    """The folder relative paths in a scenario file resolve against (absolute, for Dask workers)."""
    if scenario_arg is None or not (scenario_arg.endswith(".toml") or Path(scenario_arg).exists()):
        return None
    return str(Path(scenario_arg).resolve().parent)


def _check_workers(args: argparse.Namespace) -> None:
    if args.workers is not None and not 1 <= args.workers <= 1024:
        raise CommandError(f"--workers {args.workers}: allowed: an integer from 1 to 1024")
    if args.dask_scheduler is not None and args.workers is not None:
        raise CommandError("--workers and --dask-scheduler exclude each other; allowed: one of them")
    if args.dask_scheduler is not None:
        from sim.sweep import check_dask_address

        check_dask_address(args.dask_scheduler)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every combination of --param values for each of --seeds seeds (scenario seed, +1, ...) on a local
    process pool or a Dask cluster. Each run's row is appended to OUT/sweep.rows.jsonl as it finishes; at the
    end OUT/sweep.parquet holds one row per run: param.<key> columns, seed, status, error and every metric.
    Run it again into the same OUT to resume an interrupted sweep (runs already done are skipped). Exit 1 if
    any run failed (each is listed with its seed and params); the others complete."""
    from novacron.scenario import resolve_scenario
    from sim.sweep import build_grid, describe_failures, parse_param, stream_sweep

    scenario, text = resolve_scenario(args.scenario)
    seeds = _run_seeds(scenario.seed, args.seeds, max_count=100_000)
    _check_workers(args)
    params = [parse_param(p) for p in args.param]
    base_dir = _base_dir(args.scenario)
    grid = build_grid(text, args.scenario or "default", params, seeds, base_dir=base_dir)
    out = create_out_dir(args.out or Path("sweeps") / scenario.name)
    where = f"Dask scheduler {args.dask_scheduler}" if args.dask_scheduler else \
        f"{args.workers or 'all'} local worker process(es)"
    print(f"novacron sweep: {len(grid)} runs ({len(grid) // len(seeds)} parameter sets x {len(seeds)} seeds, "
          f"seeds {seeds[0]}..{seeds[-1]}) · scenario {scenario.name} · on {where}", flush=True)
    result = stream_sweep(text, args.scenario or "default", grid, out, workers=args.workers, base_dir=base_dir,
                          dask_scheduler=args.dask_scheduler,
                          progress=not args.no_progress and sys.stderr.isatty(), early_stop=args.early_stop,
                          fresh=args.fresh)
    if result.skipped:
        print(f"resumed: {result.skipped} run(s) already in {out} were skipped")
    print(f"results: {result.table_path}  ({result.rows} rows: params, seed, status, metrics)")
    for line in describe_failures(result.failed):
        print(line, file=sys.stderr)
    if result.failed:
        print(f"{len(result.failed)} of {len(grid)} run(s) failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_size(args: argparse.Namespace) -> int:
    """Find the smallest value of an integer setting (e.g. cluster.hosts) for which every required target
    passes in at least --confidence of --seeds seeds: a one-seed screen gallops and bisects to a guess, then
    full probes (each a sweep, stopped once settled) bracket the answer. Prints each probe's pass rate, the
    answer and the binding targets; writes OUT/size.png and size.json. Assumes more of the setting never
    hurts. Exit 1 if even the maximum fails."""
    import json
    import os
    import time

    from novacron.app.size import SizeJob, int_setting_range, plot_size, size
    from novacron.scenario import resolve_scenario
    from sim.sweep import Runner, build_grid

    scenario, text = resolve_scenario(args.scenario)
    seeds = _run_seeds(scenario.seed, args.seeds, max_count=10_000)
    if not 0 < args.confidence <= 1:
        raise CommandError(f"--confidence {args.confidence}: allowed: a number above 0 and at most 1")
    _check_workers(args)
    low, high, default = int_setting_range(args.param)
    low = low if args.min is None else max(low, args.min)
    high = high if args.max is None else min(high, args.max)
    if low > high:
        raise CommandError(f"--min {args.min} / --max {args.max}: allowed: min <= max within the setting's range")
    base_dir, origin = _base_dir(args.scenario), args.scenario or "default"
    build_grid(text, origin, [(args.param, [low, high])], seeds[:1], base_dir=base_dir)  # validates both ends
    start = _current_value(scenario, args.param, default)
    out = create_out_dir(args.out or Path("sizes") / f"{scenario.name}-{args.param}")
    where = f"Dask scheduler {args.dask_scheduler}" if args.dask_scheduler else \
        f"{args.workers or 'all'} local worker process(es)"
    print(f"novacron size: smallest {args.param} in {low}..{high} with every required target passing in "
          f">= {args.confidence:.0%} of {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}) · scenario {scenario.name} · "
          f"on {where}", flush=True)
    started = time.perf_counter()
    with Runner(workers=args.workers, dask_scheduler=args.dask_scheduler, early_stop=not args.full_runs) as runner:
        job = SizeJob(text, origin, base_dir, args.param, seeds, args.confidence, runner,
                      progress=not args.no_progress and sys.stderr.isatty(), log=lambda line: print(line, flush=True))
        result = size(job, low=low, high=high, start=start,
                      screen_width=max(1, min(4, args.workers or os.cpu_count() or 2)))
    wall_s = time.perf_counter() - started
    plot_size(result, param=args.param, confidence=args.confidence, path=str(out / "size.png"),
              screened=job.screened)
    (out / "size.json").write_text(json.dumps({
        "scenario": scenario.name, "param": args.param, "seeds": seeds, "confidence": args.confidence,
        "answer": result.answer, "binding": list(result.binding), "wall_s": round(wall_s, 2),
        "probes": [{"value": p.value, "seeds_run": p.seeds_run, "seeds_passed": p.seeds_passed, "ok": p.ok,
                    "blocking": dict(p.blocking)} for p in sorted(result.probes, key=lambda p: p.value)]},
        indent=2) + "\n")
    runs = job.runs
    if result.answer is None:
        print(f"no answer: even {args.param} = {high} fails ({'; '.join(result.binding[:3])}) "
              f"· {runs} runs in {wall_s:.0f} s · {out / 'size.png'}", file=sys.stderr)
        return EXIT_FAILED
    binding = ", ".join(result.binding[:3]) or "none (every probed value passed)"
    print(f"answer: {args.param} = {result.answer}  (binding below it: {binding})")
    print(f"{runs} runs in {wall_s:.0f} s · plot {out / 'size.png'} · {out / 'size.json'}")
    return EXIT_OK


def _current_value(scenario: object, param: str, default: int) -> int:
    value: object = scenario
    for part in param.split("."):
        value = getattr(value, part, default)
    return int(value) if isinstance(value, int) else default


def _read_bench_json(path: Path) -> dict[str, object]:
    """The ``--compare`` file, checked before the benchmarks run rather than after."""
    import json

    from novacron.benchratio import tracked_ratios

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--compare {path}: cannot read it ({exc}); allowed: a JSON file saved by "
                           "'novacron bench'") from None
    try:
        data = json.loads(text)
        tracked_ratios(data, strict=False)  # the shape (check_report) and every ratio it declares
        return dict(data)
    except ValueError as exc:  # JSONDecodeError is a ValueError too
        raise CommandError(f"--compare {path}: not a benchmark JSON ({exc}); allowed: a JSON saved by "
                           "'novacron bench'") from None


def cmd_cache_eval(args: argparse.Namespace) -> int:
    """Replay a trace (CSV time,key,size[,op] or libCacheSim oracleGeneral) through L1/L2/L3 and print per-tier
    and overall hit rates with the gap to Belady's MIN at the same capacity."""
    import json

    from novacron.app.tracefiles import TraceError, read_csv, read_oracle
    from novacron.cache.evaluate import format_result

    _check_cache_capacities(args)
    fmt = args.format or ("csv" if args.trace.suffix == ".csv" else "oracle")
    try:
        if fmt == "csv":
            with args.trace.open(newline="", encoding="utf-8") as text:
                result = _evaluate(args, read_csv(text, origin=str(args.trace)))
        else:
            with args.trace.open("rb") as binary:
                result = _evaluate(args, read_oracle(binary, origin=str(args.trace)))
    except OSError as exc:
        raise CommandError(f"{args.trace}: cannot read the trace ({exc.strerror or exc})") from None
    except TraceError as exc:
        raise CommandError(str(exc)) from None
    if result.requests == 0:
        raise CommandError(f"{args.trace}: no requests in the trace ({fmt}); allowed: a trace with at least one "
                           "request" + (" (CSV: a header time,key,size[,op] and rows)" if fmt == "csv" else ""))
    print(json.dumps(result.as_dict(), indent=2) if args.json else format_result(result))
    return EXIT_OK


def _check_cache_capacities(args: argparse.Namespace) -> None:
    import math

    if args.l1_items < 1:
        raise CommandError(f"--l1-items {args.l1_items}: allowed: an integer >= 1")
    for name in ("l2_items", "l3_bytes"):
        if getattr(args, name) < 0:
            raise CommandError(f"--{name.replace('_', '-')} {getattr(args, name)}: allowed: an integer >= 0 "
                               "(0: no such tier)")
    if args.ttl_s is not None and not (math.isfinite(args.ttl_s) and args.ttl_s > 0):
        raise CommandError(f"--ttl-s {args.ttl_s}: allowed: a number > 0 (or leave it out: no TTL)")


def _evaluate(args: argparse.Namespace, requests: Iterable[Request]) -> EvalResult:
    from novacron.cache.evaluate import evaluate_trace

    return evaluate_trace(requests, l1_items=args.l1_items, l2_items=args.l2_items, l3_bytes=args.l3_bytes,
                          policy=args.policy, ttl_s=args.ttl_s, write_mode=args.write_mode)


def _check_cache_trace_args(args: argparse.Namespace) -> None:
    import math

    for name, low in (("objects", 1), ("requests", 1), ("size", 0)):
        if getattr(args, name) < low:
            raise CommandError(f"--{name} {getattr(args, name)}: allowed: an integer >= {low}")
    if args.requests > 10**9 or args.objects > 10**9:
        raise CommandError("--requests / --objects: allowed: at most 1000000000")
    if args.size > 2**32 - 1:
        raise CommandError(f"--size {args.size}: allowed: at most {2**32 - 1} (oracleGeneral's uint32)")
    if not (math.isfinite(args.alpha) and 0 <= args.alpha <= 10):
        raise CommandError(f"--alpha {args.alpha}: allowed: a number from 0 to 10")
    if not (math.isfinite(args.rate) and args.rate > 0):
        raise CommandError(f"--rate {args.rate}: allowed: a number > 0")
    if not args.out.parent.is_dir():
        raise CommandError(f"{args.out}: the folder {args.out.parent} does not exist")


def cmd_cache_trace(args: argparse.Namespace) -> int:
    """Generate a synthetic trace: Zipf, Zipf with scans, a shifting working set, or VM-image block reads."""
    import numpy as np

    from novacron.app import tracefiles
    from novacron.cache import traces

    _check_cache_trace_args(args)
    rng = np.random.default_rng(args.seed)
    common = {"n_requests": args.requests, "rate_per_s": args.rate}
    if args.kind == "zipf":
        reqs = traces.zipf_trace(rng, n_objects=args.objects, alpha=args.alpha, size_bytes=args.size, **common)
    elif args.kind == "scan":
        reqs = traces.scan_trace(rng, n_objects=args.objects, alpha=args.alpha, size_bytes=args.size,
                                 scan_length=max(1, args.objects // 10), scan_every=max(1, args.requests // 10),
                                 **common)
    elif args.kind == "shift":
        reqs = traces.shifting_trace(rng, n_objects=args.objects, alpha=args.alpha, size_bytes=args.size, phases=4,
                                     **common)
    else:
        reqs = traces.vm_image_trace(rng, images=max(1, args.objects // 4096), blocks_per_image=4096,
                                     vms=max(1, args.requests // 2000), alpha=args.alpha, block_bytes=args.size,
                                     **common)
    fmt = args.format or ("csv" if args.out.suffix == ".csv" else "oracle")
    try:
        if fmt == "csv":
            with args.out.open("w", newline="") as text:
                tracefiles.write_csv(text, reqs)
        else:
            with args.out.open("wb") as binary:
                tracefiles.write_oracle(binary, reqs)
    except OSError as exc:
        raise CommandError(f"{args.out}: cannot write the trace ({exc.strerror or exc})") from None
    print(f"{args.out}: {len(reqs)} requests ({args.kind}, seed {args.seed}, {fmt})")
    return EXIT_OK


def _add_cache_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ev = _command(sub, "cache-eval", cmd_cache_eval,
                  help="replay a request trace through the 3-tier cache, compare with Belady")
    ev.add_argument("trace", type=Path, help="the trace file")
    ev.add_argument("--format", choices=["csv", "oracle"], default=None,
                    help="trace format (default: csv for *.csv, else oracle)")
    ev.add_argument("--l1-items", type=int, default=10_000, help="L1 capacity in items (default 10000)")
    ev.add_argument("--l2-items", type=int, default=100_000,
                    help="L2 capacity in items (default 100000; 0: no L2 tier)")
    ev.add_argument("--l3-bytes", type=int, default=10 * 2**30,
                    help="L3 capacity in bytes (default 10 GiB; 0: no L3 tier)")
    ev.add_argument("--policy", choices=["lru", "tlru", "s3fifo"], default="lru", help="eviction policy")
    ev.add_argument("--ttl-s", type=float, default=None, help="time to live in every tier (default: none)")
    ev.add_argument("--write-mode", choices=["through", "back"], default="through")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tr = _command(sub, "cache-trace", cmd_cache_trace, help="write a synthetic request trace (for cache-eval)")
    tr.add_argument("out", type=Path, help="file to write (*.csv for CSV, anything else oracleGeneral)")
    tr.add_argument("--kind", choices=["zipf", "scan", "shift", "vm-image"], default="zipf")
    tr.add_argument("--format", choices=["csv", "oracle"], default=None)
    tr.add_argument("--objects", type=int, default=100_000, help="distinct objects (vm-image: total blocks)")
    tr.add_argument("--requests", type=int, default=1_000_000)
    tr.add_argument("--alpha", type=float, default=1.0, help="Zipf skew")
    tr.add_argument("--size", type=int, default=4096, help="object size in bytes")
    tr.add_argument("--rate", type=float, default=1000.0, help="requests per second (timestamps)")
    tr.add_argument("--seed", type=seed_arg, default=1)


DEFAULT_WWS_WRITE_S = 10.0
"""Without --wws-mib: the pages the dirty rate touches in this long, at most a quarter of memory."""


def _largest_host_gib() -> float:
    """--memory-gib at most: a scenario's largest host (unbounded, 1e300 GiB was infinitely many bytes: exit 3)."""
    import dataclasses

    from novacron.scenario import ClusterConfig

    (memory,) = [f for f in dataclasses.fields(ClusterConfig) if f.name == "host_memory_gib"]
    return float(memory.metadata["max"])


def _check_migrate_plan_flags(args: argparse.Namespace) -> None:
    largest = _largest_host_gib()
    checks = (("--memory-gib", args.memory_gib, 0 < args.memory_gib <= largest,
               f"a number > 0 and <= {largest:g} (the largest host a scenario allows)"),
              ("--bandwidth-mib-s", args.bandwidth_mib_s, args.bandwidth_mib_s > 0, "a number > 0"),
              ("--dirty-rate", args.dirty_rate, args.dirty_rate >= 0, "a number >= 0 (pages/s)"),
              ("--downtime-ms", args.downtime_ms, args.downtime_ms > 0, "a number > 0"),
              ("--wws-mib", args.wws_mib, args.wws_mib is None or args.wws_mib >= 0, "a number >= 0"),
              ("--stop-copy-mib-s", args.stop_copy_mib_s, args.stop_copy_mib_s is None or args.stop_copy_mib_s > 0,
               "a number > 0"),
              ("--nonzero-gib", args.nonzero_gib,
               args.nonzero_gib is None or 0 <= args.nonzero_gib <= args.memory_gib, "0 to --memory-gib"))
    for flag, value, ok, allowed in checks:
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise CommandError(f"{flag} {value:g}: allowed: {allowed}")
    if args.wws_mib is not None and args.wws_mib / 1024 > args.memory_gib:
        raise CommandError(f"--wws-mib {args.wws_mib:g} is larger than the VM's memory ({args.memory_gib:g} GiB); "
                           f"allowed: at most {args.memory_gib * 1024:g} MiB")
    if args.wws_mib is not None and args.nonzero_gib is not None and args.wws_mib / 1024 > args.nonzero_gib:
        # written pages are not zero pages: the simulation counts the working set as non-zero, the planner would not
        raise CommandError(f"--wws-mib {args.wws_mib:g} is larger than the non-zero memory (--nonzero-gib "
                           f"{args.nonzero_gib:g}); allowed: at most {args.nonzero_gib * 1024:g} MiB")
    if args.nonzero_gib == 0 and args.dirty_rate > 0:
        # every page written is non-zero: the default working set would be 0 and the rate ignored
        raise CommandError(f"--nonzero-gib 0 with --dirty-rate {args.dirty_rate:g}: a guest that writes has "
                           "non-zero pages; allowed: --nonzero-gib > 0, or --dirty-rate 0")


def _working_set_mib(args: argparse.Namespace) -> tuple[float, str]:
    if args.wws_mib is not None:
        return args.wws_mib, "given"
    from novacron.migration.protocol import MIB, PAGE_SIZE_BYTES

    written_mib = args.dirty_rate * PAGE_SIZE_BYTES * DEFAULT_WWS_WRITE_S / MIB
    wws = min(written_mib, args.memory_gib * 1024 / 4)
    if args.nonzero_gib is not None and wws > args.nonzero_gib * 1024:
        return args.nonzero_gib * 1024, (f"default: the pages {args.dirty_rate:g} pages/s touch in "
                                         f"{DEFAULT_WWS_WRITE_S:g} s, at most the non-zero memory; set --wws-mib")
    return wws, (f"default: the pages {args.dirty_rate:g} pages/s touch in {DEFAULT_WWS_WRITE_S:g} s, at most a "
                 "quarter of memory; set --wws-mib")


def cmd_migrate_plan(args: argparse.Namespace) -> int:
    """Choose the migration type (cold, warm, live pre-copy, post-copy) and predict total time, downtime,
    dirty-sync rounds and data sent, with the pre-copy model of Clark et al. (NSDI 2005) capped by the
    writable working set."""
    from novacron.app.profiles import load_profile
    from novacron.migration.planner import VMMigrationProfile, link_from_profile, plan_migration
    from novacron.migration.protocol import GIB, MIB, PowerState

    _check_migrate_plan_flags(args)
    profile = load_profile(args.calibration)
    if args.stop_copy_mib_s is not None:
        profile = dataclasses.replace(profile, stop_copy_bytes_s=args.stop_copy_mib_s * MIB)
    wws_mib, wws_note = _working_set_mib(args)
    nonzero = None if args.nonzero_gib is None else int(args.nonzero_gib * GIB)
    vm = VMMigrationProfile(vm_id="vm", memory_bytes=int(args.memory_gib * GIB), wws_bytes=int(wws_mib * MIB),
                            dirty_rate_pages_s=args.dirty_rate, nonzero_bytes=nonzero,
                            power_state=PowerState.SHUTOFF if args.stopped else PowerState.RUNNING)
    link = link_from_profile(profile, max_bandwidth_bytes_s=args.bandwidth_mib_s * MIB)
    plan = plan_migration(vm, link, args.downtime_ms, permit_postcopy=not args.no_postcopy)
    print(f"profile     {profile.name}  ({profile.provenance.source})")
    print(f"working set {wws_mib:,.0f} MiB  ({wws_note})")
    print(f"type        {plan.migration_type.value}  ({plan.reason})")
    if plan.migration_type.value == "cold":
        print("            cold: the domain definition moves; its disk is assumed on shared storage (not copied)")
    print(f"total time  {plan.predicted_total_time_ms / 1000:.3g} s")
    print(f"downtime    {plan.predicted_downtime_ms:.4g} ms  (limit {args.downtime_ms:g} ms)")
    print(f"dirty syncs {plan.predicted_rounds}")
    print(f"data sent   {plan.predicted_bytes / MIB:,.0f} MiB")
    if args.simulate:
        _print_simulated(vm, args, profile, plan.migration_type.value, plan.predicted_total_time_ms / 1000)
    return EXIT_OK


def _print_simulated(vm, args: argparse.Namespace, profile, kind: str,  # type: ignore[no-untyped-def]
                     planned_s: float) -> None:
    from novacron.migration.protocol import MIB
    from sim.migration.hypervisor import COLD_OVERHEAD_S
    from sim.migration.qemu_model import GuestProfile, QemuMigration

    if kind == "cold":
        print(f"\nsimulated (QEMU model): cold move in {COLD_OVERHEAD_S:g} s (define on the destination, "
              "undefine on the source; disk on shared storage, not copied)")
        return
    horizon_s = SIMULATE_HORIZON_S
    guest = GuestProfile(memory_bytes=vm.memory_bytes, resident_bytes=max(vm.payload_bytes - vm.wws_bytes, 0),
                         wws_bytes=vm.wws_bytes, dirty_rate_pages_s=vm.dirty_rate_pages_s)
    model = QemuMigration(guest=guest, downtime_limit_ms=args.downtime_ms,
                          max_bandwidth_bytes_s=args.bandwidth_mib_s * MIB, calibration=profile)
    model.paused = kind == "warm"
    m = model
    m.begin()
    while not m.finished and m.elapsed_s < horizon_s:
        # as the planner (and Nova's controller) assume: switch once the first full pass is synced
        m.postcopy_requested = kind == "postcopy" and m.syncs >= 2
        m.step(math.inf)
    if m.downtime_ms is None:
        why = (f"the plan predicts {planned_s:.3g} s, past the horizon" if horizon_s < planned_s < math.inf
               else "pre-copy does not converge at these settings")
        print(f"\nsimulated (QEMU model, {kind}): did not finish within the {horizon_s:g} s horizon "
              f"({m.syncs} dirty syncs, {m.bytes_sent / MIB:,.0f} MiB sent, {m.pending_bytes / MIB:,.0f} MiB "
              f"still dirty): {why}")
        return
    print(f"\nsimulated (QEMU model, {kind}): {m.status.value} after {m.elapsed_s:.3g} s, downtime "
          f"{m.downtime_ms:.4g} ms, {m.syncs} dirty syncs, {m.bytes_sent / MIB:,.0f} MiB")


SIMULATE_HORIZON_S = 600.0


def cmd_manager(args: argparse.Namespace) -> int:
    """Run a manager process: the Raft core over asyncio TCP with its log in DATA_DIR (segment files or
    SQLite), and a client API (propose, read, status)."""
    from backends.manager.cli import federation_options, parse_peers, raft_timing, run_manager

    with as_command_error(ValueError):
        peers = parse_peers(args.peers)
        for flag in ("--client-port", "--metrics-port", "--federation-client-port"):
            port = getattr(args, flag.removeprefix("--").replace("-", "_"))
            if port is not None and not 0 <= port <= 65535:
                raise CommandError(f"{flag} {port}: allowed: a TCP port, 0 to 65535")
        if not 0 <= args.leader_min_health < 100:
            raise CommandError(f"--leader-min-health {args.leader_min_health}: allowed: 0 (off) to below 100")
        raft = raft_timing(args.id, args.heartbeat_ticks, args.election_ticks,
                           commit_broadcast=args.commit_broadcast == "on")
        federation = federation_options(args.federation_id, args.federation_peers, args.federation_client_port,
                                        args.federation_rtt_ms)
        return run_manager(args.id, peers, args.data_dir, args.client_port, args.snapshot_every,
                           args.events_origin_monotonic, args.events_jsonl, args.metrics_port, raft, federation,
                           args.debug_leak_mib_s, leader_min_health=args.leader_min_health,
                           log_store=args.log_store)


def cmd_cluster_status(args: argparse.Namespace) -> int:
    """Print role, term, leader, commit and applied index of every manager; exit 1 if no reachable manager
    leads."""
    from backends.manager.cli import parse_peers, print_cluster_status

    with as_command_error(ValueError):
        peers = parse_peers(args.peers)
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise CommandError(f"--timeout {args.timeout}: allowed: a number of seconds > 0")
    return print_cluster_status(peers, args.timeout)


def _add_manager_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    manager = _command(sub, "manager", cmd_manager, help="run one real manager (Raft over TCP, log on disk)")
    manager.add_argument("--id", type=int, required=True, help="this manager's id (one of the --peers ids)")
    manager.add_argument("--peers", required=True,
                         help="every manager's Raft address: 1=127.0.0.1:7001,2=127.0.0.1:7002,...")
    manager.add_argument("--data-dir", type=Path, required=True, help="where the Raft log and events go")
    manager.add_argument("--client-port", type=int, default=None,
                         help="client API port (default: this manager's Raft port + 100)")
    manager.add_argument("--log-store", default=None, metavar="segment|sqlite",
                         help="the Raft log's format for a new data directory: segment (append-only segment "
                              "files, one write and one fdatasync per save; the default) or sqlite (WAL, "
                              "synchronous=FULL); an existing directory opens with the store it holds")
    manager.add_argument("--snapshot-every", type=int, default=5000,
                         help="compact the log after this many applied entries (default: 5000)")
    manager.add_argument("--events-origin-monotonic", type=float, default=None, metavar="SECONDS",
                         help="events' t_s counts from this time.monotonic() value, so the logs of managers "
                              "on one machine merge in time order (default: this process's start)")
    manager.add_argument("--events-jsonl", action="store_true",
                         help="also write events.jsonl, one JSON line per event, flushed every Raft step (for "
                              "tools that tail the log live); the Parquet log (row groups in events.parts/, "
                              "folded into events.parquet + summary.json when the manager stops) is always written")
    manager.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                         help="serve Prometheus metrics (Raft term, leader, commit and applied index) on "
                              "http://CLIENT_HOST:PORT/metrics (default: off; needs novacron[real])")
    manager.add_argument("--heartbeat-ticks", type=int, default=None, metavar="N",
                         help="the cluster group's heartbeat interval in 10 ms ticks (default: 5)")
    manager.add_argument("--election-ticks", default=None, metavar="MIN-MAX",
                         help="the cluster group's election timeout range in 10 ms ticks (default: 15-30)")
    manager.add_argument("--commit-broadcast", choices=("on", "off"), default="on",
                         help="on (default): the leader sends every follower an append as soon as it commits, so "
                              "followers apply at once; off: followers learn the commit from the next append or "
                              "heartbeat (fewer messages per write, as etcd does; a follower's reads lag by up to "
                              "one heartbeat)")
    manager.add_argument("--federation-id", type=int, default=None, metavar="N",
                         help="also run this cluster's federation agent, member N of the federation Raft group")
    manager.add_argument("--federation-peers", default=None,
                         help="every federation member's Raft address: 1=HOST:PORT,2=HOST:PORT,...")
    manager.add_argument("--federation-client-port", type=int, default=None, metavar="PORT",
                         help="the federation agent's client API port (default: its Raft port + 100)")
    manager.add_argument("--federation-rtt-ms", type=float, default=150.0, metavar="MS",
                         help="the largest round trip between clusters; sets the federation group's "
                              "heartbeat and election timeout (default: 150)")
    manager.add_argument("--leader-min-health", type=float, default=0.0, metavar="SCORE",
                         help="while leading, hand leadership to a peer scoring at least 10 points more once "
                              "this manager's health score (0-100) is below SCORE (default 0: off)")
    manager.add_argument("--debug-leak-mib-s", type=float, default=None, metavar="MIB_PER_S",
                         help="fault injection: on SIGUSR1, start leaking this many MiB per second (its RSS "
                              "grows until a supervisor restarts it; default: off)")
    cluster = sub.add_parser("cluster", help="inspect running managers",
                             description="Commands that talk to running managers over their client API.")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND", required=True)
    status = _command(cluster_sub, "status", cmd_cluster_status, help="leader, term and commit index per manager")
    status.add_argument("--peers", required=True,
                        help="every manager's CLIENT address: 1=127.0.0.1:7101,2=127.0.0.1:7102,...")
    status.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each manager")


def _add_vopr_seed_args(vopr: argparse.ArgumentParser) -> None:
    """The seeds a vopr command runs (read by ``_vopr_seeds``) and where a failing seed's trace goes."""
    vopr.add_argument("--seeds", type=int, default=100, help="number of seeds to run (default 100)")
    vopr.add_argument("--first-seed", type=seed_arg, default=0, help="first seed (default 0)")
    vopr.add_argument("--seed", type=seed_arg, default=None, help="replay this one seed")
    vopr.add_argument("--trace-dir", type=Path, default=Path("vopr-traces"),
                      help="where the full trace of a failing seed is written (default vopr-traces/)")


def _vopr_seeds(args: argparse.Namespace) -> list[int]:
    """The seeds a vopr command runs: ``--seed``, or ``--seeds`` from ``--first-seed``."""
    if args.seed is not None:
        return [args.seed]
    return _run_seeds(args.first_seed, args.seeds, max_count=MAX_VOPR_SEEDS, first_field="--first-seed")


MAX_VOPR_SEEDS = 10_000_000
"""vopr's --seeds at most: the 100k-seed soaks with room to spare, and a list that fits in memory."""


def _run_seeds(first: int, count: int, *, max_count: int, first_field: str = "the scenario's seed") -> list[int]:
    """``--seeds`` consecutive seeds from ``first``, or a CommandError that names the flag."""
    from novacron.seeding import consecutive_seeds

    try:
        return consecutive_seeds(first, count, max_count=max_count, first_field=first_field)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _check_plant(plant: str | None, planted: Mapping[str, object]) -> None:
    if plant is not None and plant not in planted:
        raise CommandError(f"--plant {plant!r}: allowed: {', '.join(sorted(planted))}")


def cmd_vopr(args: argparse.Namespace) -> int:
    """Run random Raft clusters (1-7 managers) under random faults, one seed each, checking Raft's safety
    properties after every step, liveness after every heal and linearizability at the end. Exit 1 with the
    seed, a trace and a full-trace file on a violation; --seed S replays one seed exactly."""
    from novacron.raft.node import RaftNode
    from sim.raft.planted_bugs import PLANTED_BUGS
    from sim.raft.vopr import run_seeds

    seeds = _vopr_seeds(args)
    if args.federation:
        return _federation_vopr(args, seeds)
    _check_plant(args.plant, PLANTED_BUGS)
    node_class = PLANTED_BUGS[args.plant] if args.plant else None
    print(f"novacron vopr: seeds {seeds[0]}..{seeds[-1]}, {args.generator} generator"
          + (f", planted bug {args.plant}" if args.plant else ""), flush=True)
    progress = wants_progress(args)
    return run_seeds(seeds, progress=progress, node_class=node_class or RaftNode, generator=args.generator,
                     plant=args.plant, trace_dir=args.trace_dir)


def cmd_bft_vopr(args: argparse.Namespace) -> int:
    """Run random PBFT clusters (4-7 replicas, up to f of them Byzantine: equivocating, forging, replaying,
    silent) under crash and network faults, one seed each, checking agreement, validity and exactly-once after
    every execution and liveness once the network is calm. Exit 1 with the seed, a trace and a full-trace file
    on a violation; --seed S replays one seed exactly."""
    from novacron.bft.crypto import SIGNATURE_SCHEMES
    from novacron.bft.replica import Replica
    from sim.bft.planted_bugs import PLANTED_BUGS
    from sim.bft.vopr import run_seeds

    seeds = _vopr_seeds(args)
    _check_plant(args.plant, PLANTED_BUGS)
    if args.signatures not in SIGNATURE_SCHEMES:
        raise CommandError(f"--signatures {args.signatures!r}: allowed: {', '.join(SIGNATURE_SCHEMES)}")
    print(f"novacron bft-vopr: seeds {seeds[0]}..{seeds[-1]}, {args.signatures} signatures"
          + (f", planted bug {args.plant}" if args.plant else ""), flush=True)
    return run_seeds(seeds, progress=wants_progress(args), replica_class=PLANTED_BUGS.get(args.plant, Replica),
                     plant=args.plant, signatures=args.signatures, trace_dir=args.trace_dir)


def _add_bft_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    vopr = _command(sub, "bft-vopr", cmd_bft_vopr, help="Byzantine fault injection on the PBFT replicas")
    _add_vopr_seed_args(vopr)
    vopr.add_argument("--plant", default=None, help="run deliberately broken replicas (must fail): "
                      "accept-unsigned, quorum-2f, new-view-drops-prepared")
    vopr.add_argument("--signatures", default="simulated",
                      help="simulated (keyed hashes standing in for signatures, fast; default) or ed25519")
    _add_progress_args(vopr)

def _federation_vopr(args: argparse.Namespace, seeds: list[int]) -> int:
    from sim.federation.vopr import PLANTS
    from sim.federation.vopr import run_seeds as run_federation_seeds

    if args.plant is not None and args.plant not in PLANTS:
        raise CommandError(f"--plant {args.plant!r}: allowed with --federation: {', '.join(PLANTS)}")
    print(f"novacron vopr --federation: seeds {seeds[0]}..{seeds[-1]}"
          + (f", planted bug {args.plant}" if args.plant else ""), flush=True)
    return run_federation_seeds(seeds, plant=args.plant, progress=wants_progress(args))


def cmd_raft_fig16(args: argparse.Namespace) -> int:
    """Time to elect a new leader after the leader crashes, 5 managers, for the timeout ranges of Figure 16;
    writes fig16.png and fig16.csv."""
    from tqdm import tqdm

    from sim.raft.experiments import FIG16_RANGES_MS, fig16, plot_fig16, summarise

    if not 1 <= args.trials <= 1_000_000:
        raise CommandError(f"--trials {args.trials}: allowed: an integer from 1 to 1000000")
    create_out_dir(args.out)
    print(f"novacron raft-fig16: seed {args.seed} · {args.trials} trials per timeout range · 5 managers, "
          "broadcast about 15 ms", flush=True)
    with tqdm(total=args.trials * len(FIG16_RANGES_MS), unit="trial", leave=False,
              disable=args.no_progress or not sys.stderr.isatty()) as bar:
        results = fig16(args.trials, args.seed, progress=lambda _: bar.update())
    with (args.out / "fig16.csv").open("w") as f:
        f.write("timeouts,trial,election_ms\n")
        for label, times in results.items():
            f.writelines(f"{label},{i},{t:.3f}\n" for i, t in enumerate(times))
    plot_fig16(results, str(args.out / "fig16.png"))
    print("\n".join(summarise(results)))
    print(f"\nwrote {args.out / 'fig16.png'} and {args.out / 'fig16.csv'}")
    return EXIT_OK


def _add_raft_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    vopr = _command(sub, "vopr", cmd_vopr, help="deterministic simulation testing of the Raft managers")
    _add_vopr_seed_args(vopr)
    vopr.add_argument("--plant", default=None, help="run a deliberately broken node (must fail): "
                      "old-term-commit, no-election-restriction, forget-vote, stale-read, no-log-matching, "
                      "leader-keeps-term; with --generator learners: learner-quorum, learner-votes, "
                      "learner-campaigns")
    vopr.add_argument("--generator", choices=("swarm", "swarm1", "swarm2", "classic", "learners"), default="swarm",
                      help="plan generator: swarm (random subsets of fault kinds, 1-7 voters; default; swarmN: "
                           "its version N, for the seeds that version found), classic, or learners (swarm plus "
                           "learners: added, promoted, removed, crashed, cut off)")
    vopr.add_argument("--federation", action="store_true",
                      help="check the federation group instead (random datacenter cuts and losses; --plant "
                           "unrecorded-restart or a Raft bug above)")
    _add_progress_args(vopr)
    fig = _command(sub, "raft-fig16", cmd_raft_fig16, help="the Raft paper's Figure 16 experiment in simulation")
    fig.add_argument("--trials", type=int, default=1000, help="trials per timeout range (default 1000)")
    fig.add_argument("--seed", type=seed_arg, default=1, help="experiment seed (default 1)")
    fig.add_argument("--out", type=Path, default=Path("runs/raft-fig16"), help="output directory")
    fig.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def cmd_lab(args: argparse.Namespace) -> int:
    """The real-backend lab on this machine (root, Debian packages installed by scripts/test): 'up'
    builds/caches the guest and starts two libvirtd hosts, 'down' stops them, 'status' shows them,
    'kill-host N' crashes host N (SIGKILL libvirtd and its QEMUs)."""
    from backends.lab.__main__ import main as lab_main

    return lab_main([args.action, *([str(args.host)] if args.host is not None else [])])


def cmd_container_migrate(args: argparse.Namespace) -> int:
    """Migrate a real stateful service (its state in memory, answering on TCP) between two hosts' network
    namespaces, in cgroup v2 groups, by iterative pre-copy at the application level (cgroup freezer, a
    dirty map, page runs over a tbf-shaped link) while a client keeps calling it; check that the client
    saw no lost, repeated or reordered reply, and print downtime and total time measured against the
    container checkpoint/restore model (novacron.migration.kinds). Needs root. Exit 1 if a run lost or
    reordered anything."""
    from backends.lab.container_bench import grid_specs, load_groups, run_grid, write_table
    from backends.manager.netns import RigUnavailable

    if args.reuse_runs is not None:
        with as_command_error(ValueError):
            groups = load_groups(args.reuse_runs)
        return write_table(groups, args.out)
    with as_command_error(ValueError):
        specs = grid_specs(args.state_mib, args.dirty_rate_mib_s, args.link_mbit, wws_mib=args.wws_mib,
                           final_mib=args.final_mib, max_rounds=args.max_rounds)
    if not 1 <= args.repeats <= 100:
        raise CommandError(f"--repeats {args.repeats}: allowed 1 to 100")
    with as_command_error(RigUnavailable):
        return run_grid(specs, args.repeats, args.out)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Migrate a grid of guests (memory, working set, dirty rate, bandwidth and downtime limits) between two
    libvirt hosts (the lab by default, brought up if needed), fit the simulation's calibration profile on
    the training points and report its error on held-out points and leave-one-guest-size-out. Writes
    real.csv, profile.toml (use it with [migration] calibration or migrate-plan --calibration), errors.csv
    and predictions.csv."""
    from backends.lab import lab as lab_module
    from backends.lab.calibrate import calibrate
    from backends.lab.calibration_fit import format_errors

    info, started_here = None, False
    if args.reuse_real:
        if not (args.out / "real.csv").exists():
            raise CommandError(f"--reuse-real: no {args.out}/real.csv to re-fit; run without --reuse-real first")
        print(f"novacron calibrate: re-fitting {args.out}/real.csv (no migrations)")
    else:
        if args.hosts is not None and len(args.hosts) != 2:
            raise CommandError(f"--hosts {' '.join(args.hosts)}: allowed: exactly two libvirt URIs "
                               "(source, destination)")
        from novacron.runtime_config import check_libvirt_uris

        check_libvirt_uris("--hosts", args.hosts or ())
        info = lab_module.running_lab()
        started_here = info is None and args.hosts is None
        with as_command_error(lab_module.LabError):
            info = info or (lab_module.up() if args.hosts is None else lab_module.guest_only())
        hosts = args.hosts or [h.uri for h in info.hosts]
        print(f"novacron calibrate: the real grid between {hosts[0]} and {hosts[1]}, then the fit")
    try:
        table = calibrate(args.out, info, host_uris=args.hosts)
    finally:
        if started_here:
            lab_module.down()
    print(format_errors(table))
    print(f"\nwritten: {args.out}/real.csv profile.toml errors.csv predictions.csv")
    return EXIT_OK


def cmd_calibrate_raft(args: argparse.Namespace) -> int:
    """Raft timing of real managers against the simulation, per network profile: election after SIGKILL of
    the leader, cluster formation and partition recovery, run on real `novacron manager` processes (one
    network namespace each, every frame delayed -- and, with /loss=P, dropped -- by a userspace link stage,
    as tc netem would) and in the simulation with the managers' measured costs. Prints and writes the
    comparison: p50/p90/p99 of both sides, the gaps against the goal (p50 within 15 %, p99 within 25 %), the
    Kolmogorov-Smirnov distance, a plot and every trial. Needs root (network namespaces). Real trials take
    0.5-3 s each; the defaults take about 5 minutes per profile. Example: `novacron calibrate-raft --profiles
    lan,wan30/loss=0.02 --election-trials 100 --formation-trials 30 --out runs/raft-timing`."""
    import os
    import shlex
    import tempfile

    from backends.manager.calibrate_raft import TRIAL_FIELDS, compare, parse_profile, write_outputs
    from backends.manager.netns import RigUnavailable

    with as_command_error(ValueError):
        profiles = [parse_profile(p) for p in args.profiles.split(",") if p.strip()]
    if not profiles:
        raise CommandError("--profiles names no profile; e.g. --profiles lan,wan30,wan30/loss=0.02")
    if not 3 <= args.managers <= 9 or args.managers % 2 == 0:
        raise CommandError(f"--managers {args.managers}: allowed: 3, 5, 7 or 9")
    counts = dict(zip(TRIAL_FIELDS, (args.election_trials, args.formation_trials, args.partition_trials), strict=True))
    for flag, n in zip(("--election-trials", "--formation-trials", "--partition-trials"), counts.values(), strict=True):
        if not 0 <= n <= 10_000:
            raise CommandError(f"{flag} {n}: allowed: 0 to 10000")
    if not any(counts.values()):
        raise CommandError("every trial count is 0: nothing to measure")
    if not 1 <= args.sim_trials <= 100_000:
        raise CommandError(f"--sim-trials {args.sim_trials}: allowed: 1 to 100000")
    if os.geteuid() != 0:
        raise CommandError("calibrate-raft needs root: it builds a network namespace per manager")
    command = shlex.join(["novacron", "calibrate-raft", "--profiles", args.profiles, "--managers", str(args.managers),
                          "--election-trials", str(args.election_trials), "--formation-trials",
                          str(args.formation_trials), "--partition-trials", str(args.partition_trials),
                          "--sim-trials", str(args.sim_trials), "--seed", str(args.seed), "--out", str(args.out)])
    with tempfile.TemporaryDirectory(prefix="novacron-raft-timing-") as tmp, as_command_error(RigUnavailable):
        comparison = compare(profiles, args.managers, counts, args.sim_trials, args.seed, Path(tmp))
    print("\n" + comparison.markdown())
    written = write_outputs(args.out, comparison, command)
    print("\nwritten: " + " ".join(str(p) for p in written))
    return EXIT_OK


def golden_run(name: str) -> dict[str, object]:
    """Simulate a built-in scenario with its own seed; its golden record (``novacron.app.golden``)."""
    from novacron.app.golden import golden_record
    from novacron.metrics import compute_metrics
    from novacron.scenario import resolve_scenario, scenario_targets
    from sim.run import simulate

    scenario, _ = resolve_scenario(name)
    ctx = simulate(scenario, scenario.seed)
    events = list(ctx.log)
    metrics = {**compute_metrics(events), **ctx.config_metrics}
    return golden_record(scenario.name, scenario.seed, events, metrics, scenario_targets(scenario)[0])


def cmd_nab(args: argparse.Namespace) -> int:
    """Score anomaly detectors on the NAB corpus (the description is ``novacron.app.nab_cli.DESCRIPTION``)."""
    from novacron.app.nab import CorpusError
    from novacron.app.nab_cli import run_nab

    with as_command_error(CorpusError):
        return run_nab(args, progress=wants_progress(args))


def cmd_faults(args: argparse.Namespace) -> int:
    """Injected faults, detected and acted on in simulation (the description is
    ``novacron.app.faults_cli.DESCRIPTION``)."""
    from novacron.app.faults_cli import run_faults
    from novacron.app.nab import CorpusError
    from sim.fault_run import run_with_faults

    with as_command_error(ValueError, CorpusError):
        return run_faults(args, run_with_faults)


def cmd_golden(args: argparse.Namespace) -> int:
    """Run the default and scale-10 scenarios with their own seeds and compare each with
    tests/testdata/golden/: exit 1 listing what moved. --update rewrites the files after an intended change
    of behaviour."""
    from novacron.app import golden

    directory = args.dir or golden.GOLDEN_DIR
    changed = 0
    for name in golden.GOLDEN_SCENARIOS:
        actual = golden_run(name)
        seed = int(actual["seed"])  # type: ignore[call-overload]
        expected = golden.load_golden(name, seed, directory)
        if args.update:
            print(f"golden {name} seed {seed}: wrote {golden.write_golden(actual, directory)}")
            continue
        if expected is None:
            print(f"golden {name} seed {seed}: no golden file in {directory}; create it with --update")
            changed += 1
            continue
        found = golden.differences(expected, actual)
        print(golden.failure_message(name, seed, found) if found else f"golden {name} seed {seed}: unchanged")
        changed += bool(found)
    return EXIT_FAILED if changed else EXIT_OK


EPILOG = """examples:
  novacron run                         run the built-in default scenario (seed 7)
  novacron run my.toml --seed 3        run a scenario file with seed 3
  novacron run scale-1000 --duration 30d
                                       a simulated month of 1000 hosts (log streamed, memory flat)
  novacron check my.toml --junit t.xml like run, but exit 1 if a required target fails or is not measured
  novacron targets                     the target catalogue and every metric name a target can use
  novacron size scale-10 --param cluster.hosts --seeds 5
                                       the fewest hosts for which every required target passes
  novacron report runs/default-seed7   (re)write the HTML report of a run
  novacron scenario                    list every scenario setting with its default and range
  novacron bench --compare old.json    run the benchmarks; exit 1 if a tracked ratio regressed
  novacron sweep scale-10 --param cluster.hosts=8,10,12 --seeds 5
                                       a parameter grid x seeds in parallel, one Parquet table
  novacron cache-trace t.bin --alpha 1.0 && novacron cache-eval t.bin --policy s3fifo
  novacron migrate-plan --memory-gib 8 --wws-mib 512 --dirty-rate 20000 --simulate
                                       predict a VM's migration (type, time, downtime, rounds)
  novacron manager --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir m1
  novacron cluster status --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103
  novacron vopr --seeds 300            fault-inject 300 random Raft clusters (--seed S replays one)
  novacron bft-vopr --seeds 300        Byzantine fault injection on random PBFT clusters (--seed S replays one)
  novacron raft-fig16 --trials 1000    the Raft paper's Figure 16 election experiment, as a plot
  novacron golden [--update]           compare (or rewrite) the golden event-log hashes of the pinned runs
  novacron export-metrics runs/default-seed7
                                       a run's telemetry as OpenMetrics text (for Prometheus dashboards)
  novacron nab --detector all          score the anomaly detectors on the NAB corpus (three profiles, per group)
"""


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The command line (built once per process: it is constant, and building it is most of the
    cost of a rejected input, which the fuzz tests feed ``main`` thousands of times)."""
    return _build_parser()


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="novacron", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="NovaCron: check a VM cluster's control plane (Raft managers, placement, cache, "
                    "migration) against its targets, in simulation or on real hosts.")
    from novacron import __version__

    parser.add_argument("--version", action="version", version=f"novacron {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = _command(sub, "run", cmd_run, help="run a scenario and print the target table")
    _add_run_args(run)
    run.add_argument("--partitions", type=int, default=None, metavar="N",
                     help="run the federation alone, partitioned by datacenter into N partitions (default with "
                          "--dask-scheduler: one per datacenter); same event log for any N")
    run.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:8786",
                     help="run the partitions as actors on this Dask scheduler's workers")
    check = _command(sub, "check", cmd_check, help="run a scenario; exit 1 listing every missed target")
    _add_run_args(check)
    _add_check_args(check)
    report = _command(sub, "report", cmd_report, help="write the HTML report of a run directory")
    report.add_argument("run_dir", type=Path, help="a run directory written by 'novacron run'")
    export = _command(sub, "export-metrics", cmd_export_metrics,
                      help="write a run's per-host, per-VM, Raft and cache series as OpenMetrics text")
    export.add_argument("run_dir", type=Path, help="a run directory written by 'novacron run'")
    export.add_argument("--out", type=Path, default=None,
                        help="the file to write (default: RUN_DIR/metrics.openmetrics.txt)")
    export.add_argument("--start-unix-s", type=float, default=0.0,
                        help="the Unix time of the run's t_s = 0 (default 0); e.g. $(date +%%s) to see it as recent")
    compare = _command(sub, "compare", cmd_compare,
                       help="two runs of one scenario side by side (sim and real); exit 1 if their verdicts disagree")
    compare.add_argument("run_a", type=Path, help="a run directory (typically the simulation)")
    compare.add_argument("run_b", type=Path, help="a run directory of the same scenario (typically the real run)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON (for CI) instead of text")
    compare.add_argument("--plot", type=Path, default=None,
                         help="where to write the PNG (default: runs/compare-<A>-vs-<B>.png)")
    compare.add_argument("--no-plot", action="store_true", help="write no plot")
    bench = _command(sub, "bench", cmd_bench, help="run the benchmark suite; fail if a tracked ratio regresses")
    bench.add_argument("--compare", type=Path, help="a previous JSON saved by 'novacron bench'")
    bench.add_argument("--save", type=Path, help="where to save this run's JSON (default: .benchmarks/)")
    bench.add_argument("--tolerance", type=float, default=0.30,
                       help="allowed growth of a ratio before it counts as a regression (default 0.30)")
    bench.add_argument("--benchmarks", default="benchmarks", help="the benchmarks folder (default: benchmarks)")
    bench.add_argument("-k", help="only benchmarks matching this pytest -k expression")
    bench.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    tg = _command(sub, "targets", cmd_targets, help="list the target catalogue and every metric a target can name")
    tg.add_argument("scenario", nargs="?", default=None, help="a scenario file or built-in name")
    scen = _command(sub, "scenario", cmd_scenario, help="list scenario settings, or print a built-in scenario")
    scen.add_argument("name", nargs="?", help="a built-in scenario to print")
    gold = _command(sub, "golden", cmd_golden,
                    help="compare the pinned runs with their golden event-log hash and summary")
    gold.add_argument("--update", action="store_true", help="rewrite the golden files from this code")
    gold.add_argument("--dir", type=Path, default=None, help="golden folder (default: tests/testdata/golden)")
    _add_sweep_parser(sub)
    _add_cache_commands(sub)
    from novacron.app import nab_cli

    nab = _command(sub, "nab", cmd_nab, help="score anomaly detectors on the Numenta Anomaly Benchmark corpus")
    nab_cli.add_arguments(nab)
    _add_progress_args(nab)
    from novacron.app import faults_cli

    faults = _command(sub, "faults", cmd_faults, help="inject faults in simulation; score the detector per fault kind")
    faults_cli.add_arguments(faults)
    mp = _command(sub, "migrate-plan", cmd_migrate_plan, help="predict a VM's migration from its memory and dirty rate")
    mp.add_argument("--memory-gib", type=float, required=True, help="guest memory (GiB)")
    mp.add_argument("--wws-mib", type=float, default=None,
                    help="writable working set (MiB; default: 10 s of writes at the dirty rate, <= memory/4)")
    mp.add_argument("--dirty-rate", type=float, default=0.0, help="pages (4 KiB) written per second")
    mp.add_argument("--nonzero-gib", type=float, default=None, help="non-zero memory (default: all of it)")
    mp.add_argument("--bandwidth-mib-s", type=float, default=128.0, help="migration bandwidth (QEMU default 128)")
    mp.add_argument("--stop-copy-mib-s", type=float, default=None, help="copy rate while paused (default: bandwidth)")
    mp.add_argument("--downtime-ms", type=float, default=300.0, help="downtime limit (QEMU default 300)")
    mp.add_argument("--stopped", action="store_true", help="the VM is shut off (cold migration)")
    mp.add_argument("--no-postcopy", action="store_true", help="post-copy is not permitted")
    mp.add_argument("--simulate", action="store_true", help="also run the QEMU model once (horizon 600 s)")
    mp.add_argument("--calibration", default=None,
                    help="calibration profile: a TOML file or a built-in name (default: lab-tcg)")
    _add_manager_commands(sub)
    _add_raft_commands(sub)
    _add_bft_commands(sub)
    lab = _command(sub, "lab", cmd_lab, help="bring the libvirt lab (two libvirtd hosts, a tiny guest) up or down")
    lab.add_argument("action", choices=["up", "down", "status", "kill-host"])
    lab.add_argument("host", nargs="?", type=int, help="host index (kill-host only)")
    cm = _command(sub, "container-migrate", cmd_container_migrate,
                  help="real live migration of a stateful service between namespaces; error table vs the model")
    cm.add_argument("--state-mib", type=float, nargs="+", default=[16.0], help="state sizes (MiB)")
    cm.add_argument("--dirty-rate-mib-s", type=float, nargs="+", default=[2.0], help="dirty rates (MiB/s)")
    cm.add_argument("--wws-mib", type=float, default=4.0, help="writable working set (MiB)")
    cm.add_argument("--link-mbit", type=float, nargs="+", default=[400.0], help="the hosts' link, shaped with tc tbf")
    cm.add_argument("--final-mib", type=float, default=0.25, help="stop pre-copying at this many dirty MiB")
    cm.add_argument("--max-rounds", type=int, default=8, help="pre-copy rounds at most")
    cm.add_argument("--repeats", type=int, default=1, help="runs per grid point")
    cm.add_argument("--out", type=Path, default=None, help="also write OUT/errors.md and every run to OUT/runs.json")
    cm.add_argument("--reuse-runs", type=Path, default=None, metavar="RUNS_JSON",
                    help="do not migrate: the table (and fit) again from an earlier OUT/runs.json")
    raft_cal = _command(sub, "calibrate-raft", cmd_calibrate_raft,
                        help="Raft timing of real managers on emulated networks against the simulation")
    raft_cal.add_argument("--profiles", default="lan,wan30,wan80,wan150",
                          help="comma-separated network profiles: lan, wan30, wan80, wan150, each optionally with "
                               "/loss=P, the probability that a message is dropped (default: %(default)s)")
    raft_cal.add_argument("--managers", type=int, default=5, help="managers per cluster (default 5)")
    raft_cal.add_argument("--election-trials", type=int, default=40,
                          help="real elections after SIGKILL of the leader, per profile (default 40)")
    raft_cal.add_argument("--formation-trials", type=int, default=10,
                          help="real formations of a fresh cluster, per profile (default 10)")
    raft_cal.add_argument("--partition-trials", type=int, default=20,
                          help="real recoveries of an isolated leader after the heal, per profile (default 20)")
    raft_cal.add_argument("--sim-trials", type=int, default=300,
                          help="simulated trials per experiment and profile (default 300)")
    raft_cal.add_argument("--seed", type=seed_arg, default=1, help="seed of both sides' random draws (default 1)")
    raft_cal.add_argument("--out", type=Path, default=Path("runs/calibrate-raft"),
                          help="where raft_timing.md, rows.json, samples.csv and raft_timing.png go "
                               "(default: %(default)s)")
    cal = _command(sub, "calibrate", cmd_calibrate,
                   help="real migrations on two libvirt hosts; fit a calibration profile")
    cal.add_argument("--out", type=Path, default=Path("runs/calibrate"), help="output directory")
    cal.add_argument("--hosts", nargs="+", metavar="URI", default=None,
                     help="two libvirt URIs (e.g. qemu+ssh://root@a/system qemu+ssh://root@b/system) instead of "
                          "the lab; the lab guest's kernel and initramfs must exist at the same paths there")
    cal.add_argument("--reuse-real", action="store_true",
                     help="do not migrate: re-fit the real runs already in OUT/real.csv")
    return parser


def _add_sweep_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sweep = _command(sub, "sweep", cmd_sweep, help="run a parameter grid x seeds in parallel; one Parquet table")
    sweep.add_argument("scenario", help="a scenario TOML file or the name of a built-in scenario")
    sweep.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a dotted scenario key and its values, e.g. cluster.hosts=10,20 (repeatable)")
    sweep.add_argument("--seeds", type=int, default=1, help="seeds per parameter set (default 1)")
    sweep.add_argument("--early-stop", action="store_true",
                       help="end a run once a required target on a monotone metric (a peak) has failed for good: "
                            "its row says 'failed early at t_s=...' (column early_stop) and its metrics stop there")
    sweep.add_argument("--fresh", action="store_true",
                       help="discard the results already in OUT instead of resuming that sweep")
    _add_pool_args(sweep, out_default="sweeps/<scenario>")
    sz = _command(sub, "size", cmd_size, help="the smallest value of a setting for which every required target passes")
    sz.add_argument("scenario", help="a scenario TOML file or the name of a built-in scenario")
    sz.add_argument("--param", required=True, metavar="KEY", help="an integer scenario setting, e.g. cluster.hosts")
    sz.add_argument("--seeds", type=int, default=10, help="seeds per probed value (default 10)")
    sz.add_argument("--confidence", type=float, default=0.95,
                    help="share of seeds that must pass every required target (default 0.95)")
    sz.add_argument("--min", type=int, default=None, help="smallest value to consider (default: the setting's minimum)")
    sz.add_argument("--max", type=int, default=None, help="largest value to consider (default: the setting's maximum)")
    sz.add_argument("--full-runs", action="store_true",
                    help="run every simulation to its end (by default a run ends once a required target on a "
                         "monotone metric, such as peak memory, has failed for good: the verdict is the same)")
    _add_pool_args(sz, out_default="sizes/<scenario>-<param>")


def _add_pool_args(p: argparse.ArgumentParser, *, out_default: str) -> None:
    """Where the runs go (local processes or Dask) and where the results are written."""
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    p.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:8786",
                   help="run on this Dask distributed scheduler instead of local processes")
    p.add_argument("--out", type=Path, default=None, help=f"output directory (default: {out_default})")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help and --version exit 0
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    args.process_exits_after = argv is None  # the command itself, not a caller that goes on (tests)
    try:
        return int(args.handler(args))
    except (ConfigError, CommandError) as exc:
        print(f"novacron: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            return _internal_error(args, exc)
        print(f"novacron: error: '{args.command}' needs {exc.name}, which is not installed; "
              f"run: pip install 'novacron[{extra}]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("novacron: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`novacron run | head`): not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug: one line here, the traceback in a file
        return _internal_error(args, exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _internal_error(args: argparse.Namespace, exc: BaseException) -> int:
    """Exit 3: the traceback goes to the run directory (or a temporary file), one line to stderr."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    run_dir = getattr(args, "run_dir", None)
    try:
        if run_dir is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            path = Path(run_dir) / "error.txt"
            path.write_text(text)
        else:
            fd, name = tempfile.mkstemp(prefix="novacron-error-", suffix=".txt")
            with open(fd, "w") as f:
                f.write(text)
            path = Path(name)
        where = f"traceback in {path}"
    except OSError:
        where = "the traceback could not be written"
    print(f"novacron: internal error: {type(exc).__name__}: {_one_line(exc)[:200]} ({where}); "
          "please report it", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
