"""``novacron calibrate``: real migrations on two libvirt hosts, then a fitted calibration profile.

Theory of operation
-------------------
The simulation is only useful for checking targets before deployment if its migration figures
agree with real migrations outside the runs it was fitted on. ``calibrate``:

1. migrates the grid of ``calibration_grid`` for real (``run_lab_migration``: the core's
   controller driving libvirt, a constant downtime limit, Nova's completion timeout, the guest's
   health checked after each run), appending each run to ``real.csv`` as it is measured;
2. fits a calibration profile to the training runs (``calibration_fit``) and evaluates it on the
   held-out runs and leave-one-guest-size-out;
3. writes the fitted profile as TOML (``profile.toml``, with its provenance), the error tables
   (``errors.csv``) and the per-run predictions (``predictions.csv``);
4. makes the directory a run directory: each real migration's events are kept as it is measured
   (``events.parts/point-NNN.parquet``) and all of them, in grid order, become ``events.parquet``
   and ``summary.json``, so ``load_run``, ``novacron report`` and the notebooks open the grid like
   a simulated run. Each migration's ``t_s`` counts from its own start (guest boot included); in
   the merged log they follow one another, each shifted to start where the previous one ended.

The real runs are the expensive part; ``--reuse-real`` re-fits from an existing ``real.csv``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from backends.lab.calibration_fit import fit_and_evaluate
from backends.lab.calibration_grid import (
    COMPLETION_TIMEOUT_S_PER_GIB,
    REAL_COLUMNS,
    GridPoint,
    full_grid,
    point_columns,
)
from backends.lab.lab import LabInfo
from backends.lab.migrate import LabMigrationSpec, run_lab_migration
from novacron.app.eventstore import read_events
from novacron.app.profiles import dumps_profile, load_profile
from novacron.app.rundir import write_artefact_run
from novacron.events import Event
from novacron.migration.calibration import CalibrationProfile
from novacron.migration.controller import ControllerPolicy
from novacron.migration.protocol import MigrationType


def lab_spec(point: GridPoint) -> LabMigrationSpec:
    policy = ControllerPolicy(downtime_ms=point.downtime_limit_ms, downtime_steps=1,
                              bandwidth_mib_s=point.bandwidth_mib_s, poll_interval_s=0.1,
                              completion_timeout_s_per_gib=COMPLETION_TIMEOUT_S_PER_GIB)
    return LabMigrationSpec(vm_id=f"cal-{point.index:03d}", migration_type=MigrationType.LIVE,
                            memory_mib=point.memory_mib, dirty_mib=point.wws_mib,
                            dirty_rate_pages_s=point.dirty_rate_pages_s, bandwidth_mib_s=point.bandwidth_mib_s,
                            downtime_limit_ms=point.downtime_limit_ms, policy=policy)


def measured_indices(csv_path: Path) -> set[int]:
    if not csv_path.exists():
        return set()
    with csv_path.open() as handle:
        return {int(row["index"]) for row in csv.DictReader(handle)}


def run_real(lab: LabInfo, points: Sequence[GridPoint], csv_path: Path,
             progress: Callable[[str], None] = print, host_uris: Sequence[str] | None = None) -> None:
    """Migrate each point not yet in ``csv_path``; append its row as soon as it is measured."""
    done = measured_indices(csv_path)
    todo = [p for p in points if p.index not in done]
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not csv_path.exists()
    with csv_path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REAL_COLUMNS)
        if new_file:
            writer.writeheader()
        for n, point in enumerate(todo, 1):
            (csv_path.parent / EVENT_PARTS).mkdir(exist_ok=True)
            result = run_lab_migration(lab, lab_spec(point), host_uris=host_uris,
                                       events_path=csv_path.parent / EVENT_PARTS / f"point-{point.index:03d}.parquet")
            f = result.finished
            writer.writerow({**point_columns(point), "outcome": f.outcome, "total_time_ms": round(f.total_time_ms, 1),
                             "downtime_ms": round(f.downtime_ms, 1), "bytes_sent": f.bytes_sent,
                             "dirty_syncs": f.dirty_syncs, "healthy": result.health.healthy,
                             "health": result.health.describe(), "load_average": round(os.getloadavg()[0], 2)})
            handle.flush()
            progress(f"  real {n}/{len(todo)} #{point.index} ({point.describe()}): {f.outcome}, "
                     f"{f.total_time_ms:.0f} ms total, {f.downtime_ms:.0f} ms down, {f.dirty_syncs} syncs, "
                     f"{f.bytes_sent / 2**20:.0f} MiB, {'healthy' if result.health.healthy else 'UNHEALTHY'}")


EVENT_PARTS = "events.parts"


def grid_events(out_dir: Path) -> list[Event]:
    """Every measured point's events in grid order, one migration after the other in ``t_s``,
    with ``seq`` renumbered across the grid."""
    merged: list[Event] = []
    offset_s = 0.0
    for part in sorted((out_dir / EVENT_PARTS).glob("point-*.parquet")):
        first_seq = len(merged)
        merged.extend(dataclasses.replace(e, t_s=e.t_s + offset_s, seq=first_seq + n)
                      for n, e in enumerate(read_events(part)))
        offset_s = merged[-1].t_s if merged else offset_s
    return merged


def write_grid_run(out_dir: Path) -> None:
    """``events.parquet`` + ``summary.json`` of the grid's real migrations (nothing if none kept)."""
    events = grid_events(out_dir)
    if events:
        write_artefact_run(out_dir, events, name=f"calibrate-{out_dir.resolve().name}", runtime="libvirt",
                           wall_s=events[-1].t_s, description="the real migrations of a novacron calibrate grid, "
                           "one after the other; not a scenario")


def host_versions(uri: str) -> tuple[str, str]:
    """(QEMU version, libvirt version) of the host behind ``uri``."""
    import libvirt

    conn = libvirt.open(uri)
    try:
        return _dotted(conn.getVersion()), _dotted(conn.getLibVersion())
    finally:
        conn.close()


def _dotted(version: int) -> str:
    return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"


def with_lab_provenance(profile: CalibrationProfile, hosts_json: Path, *, name: str,
                        **changes: Any) -> CalibrationProfile:
    """``profile`` renamed ``name``, its provenance holding the hosts and versions ``hosts_json``
    records (as ``calibrate`` writes it; the profile's own hosts if it has none) and ``changes``
    (``source``, ``date``, ``runs``, ``fit_errors``...)."""
    where = json.loads(hosts_json.read_text()) if hosts_json.exists() else {}
    provenance = dataclasses.replace(
        profile.provenance, hosts=tuple(where.get("hosts", ())) or profile.provenance.hosts,
        qemu_version=where.get("qemu_version", ""), libvirt_version=where.get("libvirt_version", ""), **changes)
    return dataclasses.replace(profile, name=name, provenance=provenance)


def calibrate(out_dir: Path, lab: LabInfo | None, *, host_uris: Sequence[str] | None = None,
              points: Sequence[GridPoint] | None = None, start: CalibrationProfile | None = None,
              progress: Callable[[str], None] = print) -> pd.DataFrame:
    """Run (``lab`` given) or re-use (``lab`` None) the real grid in ``out_dir/real.csv`` (the hosts
    and their versions in ``hosts.json``), fit, evaluate and write ``profile.toml``, ``errors.csv``
    and ``predictions.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    real_csv, hosts_json = out_dir / "real.csv", out_dir / "hosts.json"
    if lab is not None:
        uris = list(host_uris) if host_uris else [h.uri for h in lab.hosts]
        qemu, libvirt_version = host_versions(uris[0])
        hosts_json.write_text(json.dumps({"hosts": uris, "qemu_version": qemu, "libvirt_version": libvirt_version}))
        run_real(lab, points if points is not None else full_grid(), real_csv, progress, host_uris)
    real = pd.read_csv(real_csv)
    if points is not None:
        real = real[real["index"].isin([p.index for p in points])]
    result = fit_and_evaluate(real, start or load_profile("lab-md"), progress=progress)
    profile = with_lab_provenance(result.profile, hosts_json, name=out_dir.name or "fitted",
                                  source=f"fitted by novacron calibrate on {len(real)} real migrations",
                                  date=datetime.date.today().isoformat(), runs=len(real))
    (out_dir / "profile.toml").write_text(dumps_profile(profile, "fitted by novacron calibrate"))
    result.errors.to_csv(out_dir / "errors.csv", index=False)
    result.predictions.to_csv(out_dir / "predictions.csv", index=False)
    write_grid_run(out_dir)
    return result.errors
