"""Constant memory in simulated time: scale-1000 over 1 day and 30 days, wall time and peak RSS.

Run (numbers go to benchmarks/RESULTS_capacity.md, section "Constant memory"; the 30-day run takes
several minutes, so this is a script, not part of the CI suite):

    .venv/bin/python benchmarks/bench_constant_memory.py --durations 1d 30d --out /tmp/constmem

Each duration is ``novacron run scale-1000 --duration D`` in a child process under
``/usr/bin/time -v`` (falling back to ``resource.getrusage(RUSAGE_CHILDREN)`` when GNU time is
missing): wall time, the child's peak RSS, the events in its log (``summary.json``), and the
load average before and after (the machine is shared: write it next to every number). The
child's peak and current RSS, CPU time and simulated time are traced every ``--poll-s`` seconds
to ``<out>/<scenario>-<duration>.trace.jsonl`` (``--progress`` makes the child print its progress
bar to the captured stderr), so a run cut short still shows whether memory stays flat. The
acceptance (issue 16): 30 days within 10 minutes and 3 GiB, and the peak RSS of 1 d and 30 d
within 25 % of each other. One JSON line per run is printed and appended to ``--out``/runs.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GIB = 1024**3
WALL_BUDGET_S = 600.0
RSS_BUDGET_GIB = 3.0
RSS_SPREAD = 0.25


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _child_of(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _proc_sample(pid: int) -> dict[str, float] | None:
    """Peak and current RSS (GiB) and CPU seconds of a live process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    kib = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in status.splitlines())
           if k in ("VmHWM", "VmRSS")}
    ticks = os.sysconf("SC_CLK_TCK")
    return {"hwm_gib": round(kib.get("VmHWM", 0) * 1024 / GIB, 3),
            "rss_gib": round(kib.get("VmRSS", 0) * 1024 / GIB, 3),
            "cpu_s": round((int(stat[11]) + int(stat[12])) / ticks, 1)}


def _sim_progress_s(stderr_path: Path) -> float | None:
    """The last simulated time the child's progress bar showed (``--progress``)."""
    found = re.findall(r"(\d+)/(\d+) \[", stderr_path.read_text(errors="replace")[-4000:])
    return float(found[-1][0]) if found else None


def run_once(scenario: str, duration: str, out: Path, poll_s: float) -> dict[str, Any]:
    run_dir = out / f"{scenario}-{duration}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "novacron", "run", scenario, "--duration", duration, "--out", str(run_dir),
           "--progress"]
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        cmd = [str(gnu_time), "-v", *cmd]
    load_before = _load()
    stderr_path = out / f"{scenario}-{duration}.stderr"
    trace_path = out / f"{scenario}-{duration}.trace.jsonl"
    started = time.perf_counter()
    with stderr_path.open("w") as err, trace_path.open("w") as trace:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, text=True)
        while proc.poll() is None:
            time.sleep(poll_s)
            child = _child_of(proc.pid) if gnu_time.exists() else proc.pid
            sample = None if child is None else _proc_sample(child)
            if sample is not None:
                trace.write(json.dumps({"wall_s": round(time.perf_counter() - started, 1),
                                        "sim_s": _sim_progress_s(stderr_path), **sample, "load": _load()}) + "\n")
                trace.flush()
    wall_s = time.perf_counter() - started
    stderr = stderr_path.read_text(errors="replace")
    if proc.returncode not in (0, 1):  # 1: a target failed; the run itself completed
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    peak_kib = int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cpu = [float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", stderr)]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"scenario": scenario, "duration": duration, "wall_s": round(wall_s, 1),
            "cpu_s": round(sum(cpu), 1) if cpu else None,
            "peak_rss_gib": round(peak_kib * 1024 / GIB, 3), "events": summary["events"],
            "events_sha256": summary["events_sha256"][:16], "parquet_mib": round(
                (run_dir / "events.parquet").stat().st_size / 2**20, 1),
            "load_before": load_before, "load_after": _load()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scale-1000")
    parser.add_argument("--durations", nargs="+", default=["1d", "30d"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/novacron-constant-memory"))
    parser.add_argument("--poll-s", type=float, default=20.0,
                        help="how often the child's RSS, CPU time and simulated time are traced")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for duration in args.durations:
        row = run_once(args.scenario, duration, args.out, args.poll_s)
        rows.append(row)
        print(json.dumps(row), flush=True)
        with (args.out / "runs.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
    if len(rows) >= 2:
        low, high = min(r["peak_rss_gib"] for r in rows), max(r["peak_rss_gib"] for r in rows)
        longest = rows[-1]
        print(f"peak RSS spread {100 * (high - low) / low:.1f} % (budget {100 * RSS_SPREAD:.0f} %); "
              f"{longest['duration']}: {longest['wall_s']} s (budget {WALL_BUDGET_S:.0f} s), "
              f"{longest['peak_rss_gib']} GiB (budget {RSS_BUDGET_GIB} GiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
