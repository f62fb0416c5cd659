"""Cost growth of a NovaCron run with cluster size and simulated time, against a per-VM-process peer.

Each cell is scale-1000's scenario (same hosts, flavours, demand, faults, scheduler) with
``hosts`` hosts, 50 VMs per host and ``duration`` of simulated time, run as its own process
(``novacron run``), measured by ``os.wait4``: wall time, CPU time (user + system: less sensitive
to a loaded machine than wall time), peak RSS; the events come from the run's ``summary.json``.
VM-hours are those the workload offers (each VM from its arrival to its departure or the end).
The peer baseline (``benchmarks.per_vm_baseline``: one SimPy process per VM, same workload and
demand law, first-fit placement, no log) runs in its own process too, so the two costs compare
like for like. Cells whose CPU time, extrapolated from a measured shorter cell of the same size,
would exceed ``--budget-cpu-s`` are not run and say so.

Usage::

    python -m benchmarks.bench_growth --out runs/growth            # runs the grid, writes growth.csv
    python -m benchmarks.bench_growth --table runs/growth/growth.csv   # the Markdown table
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DURATIONS_S = {"1h": 3600.0, "1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
VMS_PER_HOST = 50
FIELDS = ("hosts", "vms", "duration", "runner", "status", "wall_s", "cpu_s", "peak_rss_mib", "events",
          "vm_hours", "vm_hours_per_cpu_s", "load_average", "commit")


def scenario_text(hosts: int, duration_s: float) -> str:
    """scale-1000 resized: ``hosts`` hosts, 50 VMs each, ``duration_s`` simulated."""
    from novacron.scenario import builtin_scenario_text

    text = builtin_scenario_text("scale-1000")
    replacements = {r"^name = .*$": f'name = "growth-{hosts}"', r"^duration_s = .*$": f"duration_s = {duration_s}",
                    r"^hosts = .*$": f"hosts = {hosts}", r"^vms = .*$": f"vms = {hosts * VMS_PER_HOST}"}
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"bench_growth: scale-1000's scenario has no line matching {pattern!r}")
    return text


@functools.cache
def offered_vm_hours(scenario_path: Path, seed: int) -> float:
    """VM-hours the workload offers (one pass over its stream; both runners of a cell share it)."""
    import numpy as np

    from novacron.scenario import load_scenario
    from sim.workloads.synthetic import synthetic_workload

    scenario = load_scenario(scenario_path)
    end = scenario.duration_s
    total = 0.0
    for spec in synthetic_workload(scenario, np.random.default_rng(seed)):
        if spec.arrival_s < end:
            leave = end if spec.lifetime_s is None else min(spec.arrival_s + spec.lifetime_s, end)
            total += leave - spec.arrival_s
    return total / 3600.0


def measured(command: list[str], cwd: Path, stderr_path: Path) -> tuple[int, float, float, float]:
    """Exit status, wall s, CPU s (user + system) and peak RSS MiB of one child process. Its stderr
    goes to a file: a pipe nobody reads until the child exits would block a chatty child."""
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(stderr_path.read_text(errors="replace")[-2000:])
    return code, wall_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def run_cell(hosts: int, duration: str, runner: str, work: Path, seed: int) -> dict[str, object]:
    scenario = work / f"growth-{hosts}-{duration}.toml"
    scenario.write_text(scenario_text(hosts, DURATIONS_S[duration]))
    out = work / f"run-{hosts}-{duration}-{runner}"
    if runner == "novacron":
        command = [sys.executable, "-m", "novacron", "run", str(scenario), "--seed", str(seed), "--out", str(out),
                   "--no-progress"]
    else:
        command = [sys.executable, "-m", "benchmarks.per_vm_baseline", str(scenario), "--seed", str(seed),
                   "--out", str(out)]
    load = os.getloadavg()[0]
    code, wall_s, cpu_s, rss_mib = measured(command, Path(__file__).resolve().parents[1], work / f"{out.name}.stderr")
    events = ""
    if code == 0 and runner == "novacron":
        events = json.loads((out / "summary.json").read_text())["events"]
    elif code == 0:
        events = json.loads((out / "baseline.json").read_text())["samples"]
    vm_hours = offered_vm_hours(scenario, seed)
    return {"hosts": hosts, "vms": hosts * VMS_PER_HOST, "duration": duration, "runner": runner,
            "status": "ok" if code == 0 else f"exit {code}", "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1),
            "peak_rss_mib": round(rss_mib), "events": events, "vm_hours": round(vm_hours),
            "vm_hours_per_cpu_s": round(vm_hours / cpu_s) if cpu_s else "", "load_average": round(load, 1),
            "commit": _commit()}


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], check=False)
    return done.stdout.strip() or "unknown"


def estimate_cpu_s(rows: list[dict[str, object]], hosts: int, duration: str, runner: str) -> float | None:
    """CPU time of a cell extrapolated linearly in simulated time from the longest measured
    shorter cell of the same size and runner (None if there is none). For NovaCron it is an upper
    bound: the arrival hour costs far more than a steady one (scale-10000: 313 s of CPU for its
    first hour at load 2-5, 379 s for the whole day on a quiet machine)."""
    done = [r for r in rows if r["hosts"] == hosts and r["runner"] == runner and r["status"] == "ok"]
    if not done:
        return None
    longest = max(done, key=lambda r: DURATIONS_S[str(r["duration"])])
    return float(str(longest["cpu_s"])) * DURATIONS_S[duration] / DURATIONS_S[str(longest["duration"])]


def run_grid(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "growth.csv"
    rows: list[dict[str, object]] = []
    if table.exists():
        rows = list(csv.DictReader(table.open()))
        for r in rows:
            r["hosts"] = int(str(r["hosts"]))
    with tempfile.TemporaryDirectory(prefix="growth-", dir=args.out) as tmp:
        for hosts in args.hosts:
            for duration in args.durations:
                for runner in args.runners:
                    if any(r["hosts"] == hosts and r["duration"] == duration and r["runner"] == runner for r in rows):
                        continue  # measured before: resume
                    estimate = estimate_cpu_s(rows, hosts, duration, runner)
                    if estimate is not None and estimate > args.budget_cpu_s:
                        row: dict[str, object] = {
                            "hosts": hosts, "vms": hosts * VMS_PER_HOST, "duration": duration, "runner": runner,
                            "status": f"not run: about {estimate / 60:.0f} CPU-min estimated"}
                    else:
                        print(f"bench_growth: {hosts} hosts, {duration}, {runner} ...", flush=True)
                        row = run_cell(hosts, duration, runner, Path(tmp), args.seed)
                        print(f"  {row}", flush=True)
                    rows.append(row)
                    _write(table, rows)
    print(f"bench_growth: {table}")


def _write(table: Path, rows: list[dict[str, object]]) -> None:
    partial = table.with_suffix(".tmp")
    with partial.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in FIELDS})
    partial.replace(table)


def _shown(row: dict[str, str], keys: tuple[str, ...]) -> list[str]:
    """A measured row's values; for a cell not measured, why (once) and dashes."""
    if row.get("status") == "ok":
        return [str(row.get(key, "")) for key in keys]
    return [row.get("status") or "—", *["—"] * (len(keys) - 1)]


def markdown(table: Path) -> str:
    rows = list(csv.DictReader(table.open()))
    lines = ["| hosts | VMs | simulated | NovaCron wall s | CPU s | peak RSS MiB | events | VM-hours / CPU s | "
             "per-VM SimPy CPU s | VM-hours / CPU s | NovaCron advantage (CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    cells = {(r["hosts"], r["duration"], r["runner"]): r for r in rows}
    for hosts, duration in dict.fromkeys((r["hosts"], r["duration"]) for r in rows):
        ours, peer = cells.get((hosts, duration, "novacron"), {}), cells.get((hosts, duration, "per-vm"), {})

        ratio = ""
        if ours.get("status") == "ok" and peer.get("status") == "ok":
            ratio = f"{float(peer['cpu_s']) / float(ours['cpu_s']):.1f}x"
        ours_keys = ("wall_s", "cpu_s", "peak_rss_mib", "events", "vm_hours_per_cpu_s")
        cells_shown = [hosts, ours.get("vms") or peer.get("vms"), duration, *_shown(ours, ours_keys),
                       *_shown(peer, ("cpu_s", "vm_hours_per_cpu_s")), ratio]
        lines.append("| " + " | ".join(str(c) for c in cells_shown) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_growth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/growth"), help="folder for growth.csv (resumable)")
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 10, 100, 1000, 10000])
    parser.add_argument("--durations", nargs="+", default=list(DURATIONS_S), choices=list(DURATIONS_S))
    parser.add_argument("--runners", nargs="+", default=["novacron", "per-vm"], choices=["novacron", "per-vm"])
    parser.add_argument("--budget-cpu-s", type=float, default=900.0,
                        help="skip a cell whose extrapolated CPU time exceeds this (default 900)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--table", type=Path, default=None, help="print the Markdown table of this growth.csv")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(markdown(args.table))
        return
    run_grid(args)


if __name__ == "__main__":
    main()
