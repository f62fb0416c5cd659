"""The ``novacron`` command: the composition root that wires a runtime to the core.

This is the one module of the core allowed to reach the runtimes; it imports them lazily, inside
the command that needs them, so ``import novacron`` stays free of SimPy, libvirt and Redis.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from novacron.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default=None,
                   help="a scenario TOML file or the name of a built-in scenario (default: 'default')")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed (default: the scenario's 'seed'); the same seed reproduces the same event log")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory to write (default: runs/<scenario>-seed<N>)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def cmd_run(args: argparse.Namespace) -> int:
    from novacron.slo import format_table

    result = _run(args)
    print(format_table(result.results))
    print(f"\nrun directory: {result.run_dir}  (events.parquet, summary.json, report.html)")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from novacron.slo import format_table

    result = _run(args)
    print(format_table(result.results))
    missed = [r for r in result.results if r.missed]
    if missed:
        print(f"\n{len(missed)} target(s) missed:", file=sys.stderr)
        for r in missed:
            print(f"  {r.target.name}: measured {r.measured:.4g} {r.target.unit}, "
                  f"needs {r.target.describe_threshold()}", file=sys.stderr)
        return EXIT_FAILED
    print("\nall measured targets met")
    return EXIT_OK


def _run(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from novacron.scenario import resolve_scenario
    from novacron.seeding import MAX_SEED
    from sim.run import run_scenario

    scenario, text = resolve_scenario(args.scenario)
    seed = scenario.seed if args.seed is None else args.seed
    if not 0 <= seed <= MAX_SEED:
        raise CommandError(f"--seed {seed} is out of range; allowed: 0 to {MAX_SEED}")
    out = args.out or Path("runs") / f"{scenario.name}-seed{seed}"
    print(f"novacron run: seed {seed} · scenario {scenario.name} · {scenario.cluster.hosts} hosts · "
          f"{scenario.workload.vms} VMs · {scenario.duration_s:g} s simulated", flush=True)
    progress = not args.no_progress and sys.stderr.isatty()
    return run_scenario(scenario, seed, out, text, progress=progress)


def cmd_report(args: argparse.Namespace) -> int:
    from novacron.analysis import RunNotFound
    from novacron.report import write_report

    try:
        html_path = write_report(args.run_dir)
    except RunNotFound as exc:
        raise CommandError(str(exc)) from None
    print(f"report: {html_path}")
    return EXIT_OK


def cmd_scenario(args: argparse.Namespace) -> int:
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


def cmd_bench(args: argparse.Namespace) -> int:
    import json
    import subprocess
    from datetime import UTC, datetime

    from novacron.benchratio import compare

    bench_dir = Path(args.benchmarks)
    if not bench_dir.is_dir():
        raise CommandError(f"{bench_dir}: no benchmarks folder here; run from a NovaCron checkout or pass --benchmarks")
    previous = _read_bench_json(args.compare) if args.compare else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    save = args.save or Path(".benchmarks") / f"bench-{stamp}.json"
    save.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", str(bench_dir), "-p", "no:cacheprovider", "-q",
               "-o", f"testpaths={bench_dir}", "-o", "python_files=bench_*.py", "--benchmark-enable",
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from novacron.scenario import resolve_scenario
    from sim.sweep import build_grid, describe_failures, parse_param, run_sweep, write_table

    scenario, text = resolve_scenario(args.scenario)
    if args.seeds < 1:
        raise CommandError(f"--seeds {args.seeds}: allowed: an integer >= 1")
    params = [parse_param(p) for p in args.param]
    seeds = [scenario.seed + k for k in range(args.seeds)]
    grid = build_grid(text, args.scenario or "default", params, seeds)
    out = args.out or Path("sweeps") / scenario.name
    where = f"Dask scheduler {args.dask_scheduler}" if args.dask_scheduler else \
        f"{args.workers or 'all'} local worker process(es)"
    print(f"novacron sweep: {len(grid)} runs ({len(grid) // len(seeds)} parameter sets x {len(seeds)} seeds, "
          f"seeds {seeds[0]}..{seeds[-1]}) · scenario {scenario.name} · on {where}", flush=True)
    result = run_sweep(text, args.scenario or "default", grid, workers=args.workers,
                       dask_scheduler=args.dask_scheduler, progress=not args.no_progress and sys.stderr.isatty())
    path = write_table(result.table, out)
    print(f"results: {path}  ({len(result.table)} rows: params, seed, status, metrics)")
    for line in describe_failures(result.failed):
        print(line, file=sys.stderr)
    if result.failed:
        print(f"{len(result.failed)} of {len(grid)} run(s) failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _read_bench_json(path: Path) -> dict[str, object]:
    import json

    try:
        data: dict[str, object] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"--compare {path}: cannot read a benchmark JSON ({exc})") from None
    return data


def cmd_migrate_plan(args: argparse.Namespace) -> int:
    from novacron.migration.planner import LinkEstimate, VMMigrationProfile, plan_migration
    from novacron.migration.protocol import GIB, MIB, PowerState

    if args.wws_mib * MIB > args.memory_gib * GIB:
        raise CommandError(f"--wws-mib {args.wws_mib:g} is larger than the VM's memory ({args.memory_gib:g} GiB)")
    nonzero = None if args.nonzero_gib is None else int(args.nonzero_gib * GIB)
    vm = VMMigrationProfile(vm_id="vm", memory_bytes=int(args.memory_gib * GIB), wws_bytes=int(args.wws_mib * MIB),
                            dirty_rate_pages_s=args.dirty_rate, nonzero_bytes=nonzero,
                            power_state=PowerState.SHUTOFF if args.stopped else PowerState.RUNNING)
    link = LinkEstimate(bandwidth_bytes_s=args.bandwidth_mib_s * MIB,
                        stop_copy_bytes_s=(args.stop_copy_mib_s or args.bandwidth_mib_s) * MIB)
    plan = plan_migration(vm, link, args.downtime_ms, permit_postcopy=not args.no_postcopy)
    print(f"type        {plan.migration_type.value}  ({plan.reason})")
    print(f"total time  {plan.predicted_total_time_ms / 1000:.3g} s")
    print(f"downtime    {plan.predicted_downtime_ms:.4g} ms  (limit {args.downtime_ms:g} ms)")
    print(f"dirty syncs {plan.predicted_rounds}")
    print(f"data sent   {plan.predicted_bytes / MIB:,.0f} MiB")
    if args.simulate and plan.migration_type.value in ("live", "postcopy"):
        _print_simulated(vm, args, postcopy=plan.migration_type.value == "postcopy")
    return EXIT_OK


def _print_simulated(vm, args: argparse.Namespace, *, postcopy: bool) -> None:  # type: ignore[no-untyped-def]
    from novacron.migration.protocol import MIB
    from sim.qemu_model import GuestProfile, QemuMigration, StreamCalibration, run_alone

    nonzero = vm.payload_bytes
    guest = GuestProfile(memory_bytes=vm.memory_bytes, resident_bytes=max(nonzero - vm.wws_bytes, 0),
                         wws_bytes=vm.wws_bytes, dirty_rate_pages_s=vm.dirty_rate_pages_s)
    cal = StreamCalibration(stream_cap_bytes_s=args.bandwidth_mib_s * MIB,
                            stop_copy_bytes_s=(args.stop_copy_mib_s or args.bandwidth_mib_s) * MIB)
    m = run_alone(QemuMigration(guest=guest, downtime_limit_ms=args.downtime_ms, max_bandwidth_bytes_s=None,
                                calibration=cal), until_s=600.0, postcopy_after_s=3.0 if postcopy else None)
    print(f"\nsimulated (QEMU model): {m.status.value} after {m.elapsed_s:.3g} s, downtime "
          f"{m.downtime_ms or 0:.4g} ms, {m.syncs} dirty syncs, {m.bytes_sent / MIB:,.0f} MiB")


EPILOG = """examples:
  novacron run                         run the built-in default scenario (seed 7)
  novacron run my.toml --seed 3        run a scenario file with seed 3
  novacron check my.toml               like run, but exit 1 if a target is missed (for CI)
  novacron report runs/default-seed7   (re)write the HTML report of a run
  novacron scenario                    list every scenario setting with its default and range
  novacron bench --compare old.json    run the benchmarks; exit 1 if a tracked ratio regressed
  novacron sweep scale-10 --param cluster.hosts=8,10,12 --seeds 5
                                       a parameter grid x seeds in parallel, one Parquet table
  novacron migrate-plan --memory-gib 8 --wws-mib 512 --dirty-rate 20000 --simulate
                                       predict a VM's migration (type, time, downtime, rounds)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novacron", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="NovaCron: check a VM cluster's control plane (Raft managers, placement, cache, "
                    "migration) against its targets, in simulation or on real hosts.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a scenario and print the target table",
                         description="Run a scenario in the SimPy model. Writes events.parquet, "
                                     "summary.json and report.html to the run directory. The first "
                                     "line printed names the seed.")
    _add_run_args(run)
    run.set_defaults(handler=cmd_run)
    check = sub.add_parser("check", help="run a scenario; exit 1 listing every missed target",
                           description="Run a scenario and exit non-zero if any target is missed: "
                                       "the command to put in CI.")
    _add_run_args(check)
    check.set_defaults(handler=cmd_check)
    report = sub.add_parser("report", help="write the HTML report of a run directory",
                            description="Write report.html (self-contained) and report.md for a run.")
    report.add_argument("run_dir", type=Path, help="a run directory written by 'novacron run'")
    report.set_defaults(handler=cmd_report)
    bench = sub.add_parser("bench", help="run the benchmark suite; fail if a tracked ratio regresses",
                           description="Run benchmarks/bench_*.py with pytest-benchmark, save the JSON, and "
                                       "compare each tracked ratio (a benchmark over its baseline measured in "
                                       "the same run, medians over rounds) with --compare.")
    bench.add_argument("--compare", type=Path, help="a previous JSON saved by 'novacron bench'")
    bench.add_argument("--save", type=Path, help="where to save this run's JSON (default: .benchmarks/)")
    bench.add_argument("--tolerance", type=float, default=0.30,
                       help="allowed growth of a ratio before it counts as a regression (default 0.30)")
    bench.add_argument("--benchmarks", default="benchmarks", help="the benchmarks folder (default: benchmarks)")
    bench.add_argument("-k", help="only benchmarks matching this pytest -k expression")
    bench.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    bench.set_defaults(handler=cmd_bench)
    scen = sub.add_parser("scenario", help="list scenario settings, or print a built-in scenario",
                          description="Without NAME: every setting with its default, allowed values "
                                      "and meaning. With NAME: the built-in scenario's TOML.")
    scen.add_argument("name", nargs="?", help="a built-in scenario to print")
    scen.set_defaults(handler=cmd_scenario)
    _add_sweep_parser(sub)
    mp = sub.add_parser("migrate-plan", help="predict a VM's migration from its memory and dirty rate",
                        description="Choose the migration type (cold, warm, live pre-copy, post-copy) and predict "
                                    "total time, downtime, dirty-sync rounds and data sent, with the pre-copy "
                                    "model of Clark et al. (NSDI 2005) capped by the writable working set.")
    mp.add_argument("--memory-gib", type=float, required=True, help="guest memory (GiB)")
    mp.add_argument("--wws-mib", type=float, default=0.0, help="writable working set (MiB)")
    mp.add_argument("--dirty-rate", type=float, default=0.0, help="pages (4 KiB) written per second")
    mp.add_argument("--nonzero-gib", type=float, default=None, help="non-zero memory (default: all of it)")
    mp.add_argument("--bandwidth-mib-s", type=float, default=128.0, help="migration bandwidth (QEMU default 128)")
    mp.add_argument("--stop-copy-mib-s", type=float, default=None, help="copy rate while paused (default: bandwidth)")
    mp.add_argument("--downtime-ms", type=float, default=300.0, help="downtime limit (QEMU default 300)")
    mp.add_argument("--stopped", action="store_true", help="the VM is shut off (cold migration)")
    mp.add_argument("--no-postcopy", action="store_true", help="post-copy is not permitted")
    mp.add_argument("--simulate", action="store_true", help="also run the QEMU model once")
    mp.set_defaults(handler=cmd_migrate_plan)
    return parser


def _add_sweep_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sweep = sub.add_parser("sweep", help="run a parameter grid x seeds in parallel; one Parquet table",
                           description="Run every combination of --param values for each of --seeds seeds "
                                       "(scenario seed, +1, ...) on a local process pool or a Dask cluster. "
                                       "Writes OUT/sweep.parquet, one row per run: param.<key> columns, seed, "
                                       "status, error and every metric. Exit 1 if any run failed (each is "
                                       "listed with its seed and params); the others complete.")
    sweep.add_argument("scenario", help="a scenario TOML file or the name of a built-in scenario")
    sweep.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a dotted scenario key and its values, e.g. cluster.hosts=10,20 (repeatable)")
    sweep.add_argument("--seeds", type=int, default=1, help="seeds per parameter set (default 1)")
    sweep.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    sweep.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:8786",
                       help="run on this Dask distributed scheduler instead of local processes")
    sweep.add_argument("--out", type=Path, default=None, help="output directory (default: sweeps/<scenario>)")
    sweep.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    sweep.set_defaults(handler=cmd_sweep)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except (ConfigError, CommandError) as exc:
        print(f"novacron: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("novacron: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
