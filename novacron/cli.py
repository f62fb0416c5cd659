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


def cmd_manager(args: argparse.Namespace) -> int:
    from backends.manager.cli import parse_peers, run_manager

    try:
        peers = parse_peers(args.peers)
        return run_manager(args.id, peers, args.data_dir, args.client_port, args.snapshot_every)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from backends.manager.cli import parse_peers, print_cluster_status

    try:
        peers = parse_peers(args.peers)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return print_cluster_status(peers, args.timeout)


def _add_manager_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    manager = sub.add_parser("manager", help="run one real manager (Raft over TCP, SQLite log)",
                             description="Run a manager process: the Raft core over asyncio TCP with its "
                                         "log in SQLite in DATA_DIR, and a client API (propose, read, status).")
    manager.add_argument("--id", type=int, required=True, help="this manager's id (one of the --peers ids)")
    manager.add_argument("--peers", required=True,
                         help="every manager's Raft address: 1=127.0.0.1:7001,2=127.0.0.1:7002,...")
    manager.add_argument("--data-dir", type=Path, required=True, help="where the SQLite log and events go")
    manager.add_argument("--client-port", type=int, default=None,
                         help="client API port (default: this manager's Raft port + 100)")
    manager.add_argument("--snapshot-every", type=int, default=5000,
                         help="compact the log after this many applied entries (default: 5000)")
    manager.set_defaults(handler=cmd_manager)
    cluster = sub.add_parser("cluster", help="inspect running managers",
                             description="Commands that talk to running managers over their client API.")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND")
    status = cluster_sub.add_parser("status", help="leader, term and commit index per manager",
                                    description="Print role, term, leader, commit and applied index of every "
                                                "manager; exit 1 if no reachable manager leads.")
    status.add_argument("--peers", required=True,
                        help="every manager's CLIENT address: 1=127.0.0.1:7101,2=127.0.0.1:7102,...")
    status.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each manager")
    status.set_defaults(handler=cmd_cluster_status)


def cmd_vopr(args: argparse.Namespace) -> int:
    from sim.raft_bugs import PLANTED_BUGS
    from sim.vopr import run_seeds

    if args.seed is not None:
        seeds = [args.seed]
    else:
        if args.seeds < 1:
            raise CommandError(f"--seeds {args.seeds}: allowed: 1 or more")
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.plant is not None and args.plant not in PLANTED_BUGS:
        raise CommandError(f"--plant {args.plant!r}: allowed: {', '.join(sorted(PLANTED_BUGS))}")
    node_class = PLANTED_BUGS[args.plant] if args.plant else None
    print(f"novacron vopr: seeds {seeds[0]}..{seeds[-1]}" + (f" with planted bug {args.plant}" if args.plant else ""),
          flush=True)
    progress = not args.no_progress and sys.stderr.isatty()
    if node_class is None:
        return run_seeds(seeds, progress=progress)
    return run_seeds(seeds, progress=progress, node_class=node_class)


def cmd_raft_fig16(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sim.raft_experiments import FIG16_RANGES_MS, fig16, plot_fig16, summarise

    args.out.mkdir(parents=True, exist_ok=True)
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
    vopr = sub.add_parser("vopr", help="deterministic simulation testing of the Raft managers",
                          description="Run random Raft clusters (3-7 managers) under random faults, one "
                                      "seed each, checking Raft's safety properties after every step and "
                                      "linearizability at the end. Exit 1 with the seed and a trace on a "
                                      "violation; --seed S replays one seed exactly.")
    vopr.add_argument("--seeds", type=int, default=100, help="number of seeds to run (default 100)")
    vopr.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    vopr.add_argument("--seed", type=int, default=None, help="replay this one seed")
    vopr.add_argument("--plant", default=None, help="run a deliberately broken node (must fail): "
                      "old-term-commit, no-election-restriction, forget-vote")
    vopr.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    vopr.set_defaults(handler=cmd_vopr)
    fig = sub.add_parser("raft-fig16", help="the Raft paper's Figure 16 experiment in simulation",
                         description="Time to elect a new leader after the leader crashes, 5 managers, "
                                     "for the timeout ranges of Figure 16; writes fig16.png and fig16.csv.")
    fig.add_argument("--trials", type=int, default=1000, help="trials per timeout range (default 1000)")
    fig.add_argument("--seed", type=int, default=1, help="experiment seed (default 1)")
    fig.add_argument("--out", type=Path, default=Path("runs/raft-fig16"), help="output directory")
    fig.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    fig.set_defaults(handler=cmd_raft_fig16)


EPILOG = """examples:
  novacron run                         run the built-in default scenario (seed 7)
  novacron run my.toml --seed 3        run a scenario file with seed 3
  novacron check my.toml               like run, but exit 1 if a target is missed (for CI)
  novacron report runs/default-seed7   (re)write the HTML report of a run
  novacron scenario                    list every scenario setting with its default and range
  novacron manager --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir m1
  novacron cluster status --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103
  novacron vopr --seeds 300            fault-inject 300 random Raft clusters (--seed S replays one)
  novacron raft-fig16 --trials 1000    the Raft paper's Figure 16 election experiment, as a plot
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
    scen = sub.add_parser("scenario", help="list scenario settings, or print a built-in scenario",
                          description="Without NAME: every setting with its default, allowed values "
                                      "and meaning. With NAME: the built-in scenario's TOML.")
    scen.add_argument("name", nargs="?", help="a built-in scenario to print")
    scen.set_defaults(handler=cmd_scenario)
    _add_manager_commands(sub)
    _add_raft_commands(sub)
    return parser


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
