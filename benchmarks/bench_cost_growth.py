"""Cost growth of a run: wall time, peak RSS, events and VM-hours per second over hosts x duration.

Each cell runs ``novacron run`` on the built-in ``scale-N`` scenario with ``duration_s`` set to
the cell's duration, in a child process under ``/usr/bin/time -v`` (so peak RSS is the child's
own), and reads the run directory: events from ``summary.json``, VM-hours from the log (each VM
counts from its ``VMPlaced`` until its ``VMStopped``/``VMFailed`` or the end of the run).

Run: ``.venv/bin/python -m benchmarks.bench_cost_growth --hosts 3 10 100 --days 0.0417 1``
(the issue's grid is 3/10/100/1000/10000 hosts x 1 h/1 d/7 d/30 d; ``--max-wall-s`` skips the
cells after one that took longer). Prints a Markdown table with the load average per cell for
``benchmarks/RESULTS_capacity.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from novacron.scenario import builtin_scenario_text

ENDS = ("VMStopped", "VMFailed")


def vm_hours(run_dir: Path, duration_s: float) -> float:
    from novacron.app.analysis import load_run

    run = load_run(run_dir)
    placed = run.of_type("VMPlaced")
    if placed.empty:
        return 0.0
    total_s = 0.0
    ends_by_vm: dict[str, list[float]] = {}
    for kind in ENDS:
        frame = run.of_type(kind)
        if frame.empty:
            continue
        for t_s, vm_id in frame[["t_s", "vm_id"]].itertuples(index=False):
            ends_by_vm.setdefault(vm_id, []).append(t_s)
    for vm_id, starts in placed.groupby("vm_id")["t_s"]:
        ends = sorted(ends_by_vm.get(str(vm_id), []))
        for start in sorted(starts):
            end = next((e for e in ends if e >= start), duration_s)
            total_s += end - start
    return total_s / 3600.0


def run_cell(hosts: int, days: float, out: Path) -> dict[str, float]:
    text = re.sub(r"(?m)^duration_s = .*$", f"duration_s = {days * 86400.0}", builtin_scenario_text(f"scale-{hosts}"))
    scenario = out / f"scale-{hosts}-{days:g}d.toml"
    scenario.write_text(text)
    run_dir = out / scenario.stem
    timed = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "novacron", "run", str(scenario),
                            "--out", str(run_dir), "--no-progress"], capture_output=True, text=True, check=False)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", timed.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timed.stderr)
    if wall is None or rss is None or not (run_dir / "summary.json").exists():
        raise RuntimeError(f"scale-{hosts} {days} d failed:\n{timed.stderr[-2000:]}")
    wall_s = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    summary = json.loads((run_dir / "summary.json").read_text())
    events = float(summary["metrics"]["run.events"])
    hours = vm_hours(run_dir, days * 86400.0)
    return {"wall_s": wall_s, "rss_gib": int(rss.group(1)) / 2**20, "events": events, "vm_hours": hours,
            "vm_hours_per_s": hours / wall_s, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 10, 100, 1000, 10000])
    parser.add_argument("--days", type=float, nargs="+", default=[1 / 24, 1.0, 7.0, 30.0])
    parser.add_argument("--max-wall-s", type=float, default=1800.0)
    args = parser.parse_args()
    print("| hosts | simulated | wall s | peak RSS GiB | events | VM-hours | VM-hours / s | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for hosts in args.hosts:
            for days in args.days:
                cell = run_cell(hosts, days, Path(tmp))
                label = f"{days * 24:g} h" if days < 1 else f"{days:g} d"
                print(f"| {hosts} | {label} | {cell['wall_s']:.1f} | {cell['rss_gib']:.2f} | {cell['events']:,.0f} "
                      f"| {cell['vm_hours']:,.0f} | {cell['vm_hours_per_s']:,.1f} | {cell['load']:.1f} |", flush=True)
                if cell["wall_s"] > args.max_wall_s:
                    break


if __name__ == "__main__":
    main()
