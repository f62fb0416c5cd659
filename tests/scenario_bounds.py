"""Every numeric setting of the schema at its min and at its max, one at a time.

A bound the schema accepts must run: each case is a small busy scenario (every optional section
on) with one setting at a bound, run and checked like a fuzz example (``tests/scenario_fuzz.py``).
A case validation refuses is printed with its one-line reason (a bound that only conflicts with
another setting's default, e.g. ``raft.election_ticks_max = 2`` below the minimum's default).
``python -m tests.scenario_bounds [FIRST LAST]`` runs the cases (553 today; about 6 minutes, three
of them -- a million VMs, 10^7 cache requests per second, 2.5 million federation VMs -- take more
than 40 s each and are cut there).
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Any

from novacron.config import ConfigError
from novacron.scenario import Scenario, loads_scenario
from tests.scenario_fuzz import SLOW_S, _alarm, _InlineTable, _limit_memory, _render, _Slow, run_one

BOUND_BASE = {
    "duration_s": 300.0,
    "cluster": {"hosts": 4},
    "workload": {"vms": 20, "arrival_window_s": 60.0, "lifetime_mean_s": 600.0},
    "cache": {"requests_per_s": 50.0, "active_s": 60.0, "keys": 1000},
    "faults": {"enabled": True, "host_mtbf_h": 1.0, "host_mttr_h": 0.05, "manager_mtbf_h": 0.5,
               "partition_mtbf_h": 0.5, "restart_delay_s": 30.0},
    "migration": {"migrations": 5, "start_s": 90.0, "request_window_s": 60.0},
    "raft": {"simulate_s": 30.0},
    "storage": {"enabled": True},
    "federation": {"enabled": True, "vms": 10, "hosts_per_cluster": 2, "migrations": 2, "migration_start_s": 120.0,
                   "outage_datacenter": "eu-west-1", "outage_at_s": 200.0},
    "autoscale": {"policy": "threshold", "initial_hosts": 2},
    "prediction": {"migration": True},
    "edge": {"enabled": True},
    "pools": {"enabled": True, "names": ["a", "b"]},
    "gpus": {"enabled": True},
    "kind_migration": {"migrations": 3},
    "memory_pool": {"enabled": True, "local_gib_per_host": 128.0},
}


def bound_scenarios() -> list[tuple[str, str]]:
    """(label, TOML) for every numeric setting at its min and at its max, the rest a small busy
    scenario with every optional section on."""
    out = []
    hints = typing.get_type_hints(Scenario)
    for field in dataclasses.fields(Scenario):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            out.extend(_section_bounds(field.name, hint))
        elif field.metadata.get("min") is not None and field.name not in ("seed",):
            for bound in (field.metadata["min"], field.metadata["max"]):
                if field.name == "duration_s" and bound > 1800:
                    continue  # a year of simulated time is a capacity run, not a fuzz example
                top = {**BOUND_BASE, field.name: bound}
                out.append((f"{field.name}={bound:g}", _render_base(top)))
    return out


def _section_bounds(name: str, cls: Any, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):  # the edge service classes
            out.extend(_section_bounds(name, hint, f"{prefix}{field.name}."))
            continue
        low, high = field.metadata.get("min"), field.metadata.get("max")
        if low is None or high is None:
            continue
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        for bound in (low, high):
            value: Any = (int(bound) if typing.get_origin(hint) is None and hint is int else float(bound))
            if isinstance(default, tuple):
                if not default:
                    continue
                inner = typing.get_args(hint)[0]
                value = [int(bound) if inner is int else float(bound)] * len(default)
            elif hint is int or (typing.get_origin(hint) is not None and int in typing.get_args(hint)
                                 and float not in typing.get_args(hint)):
                value = int(bound)
            table = dict(BOUND_BASE.get(name, {}))  # type: ignore[arg-type]
            if prefix:
                service = prefix.rstrip(".")
                table[service] = _InlineTable({field.name: value})
            else:
                table[field.name] = value
            out.append((f"{name}.{prefix}{field.name}={bound:g}", _render_base({**BOUND_BASE, name: table})))
    return out


def _render_base(top: dict[str, Any]) -> str:
    scalars = {k: v for k, v in top.items() if not isinstance(v, dict) or isinstance(v, _InlineTable)}
    sections = {k: v for k, v in top.items() if isinstance(v, dict) and not isinstance(v, _InlineTable)}
    return _render({"name": "bound", "seed": 7, **scalars}, sections)


def main() -> int:
    """``python -m tests.scenario_bounds [FIRST LAST]``: every bound, one at a time."""
    signal.signal(signal.SIGALRM, _alarm)
    _limit_memory()
    cases = bound_scenarios()
    first, last = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (0, len(cases))
    with tempfile.TemporaryDirectory(prefix="novacron-bounds-") as tmp:
        for index in range(first, min(last, len(cases))):
            label, text = cases[index]
            try:
                loads_scenario(text, origin=label)
            except ConfigError as exc:
                print(f"REFUSED {index} {label}: {exc}", flush=True)
                continue
            signal.alarm(SLOW_S)
            started = time.perf_counter()
            try:
                problems, _ = run_one(text, 7, Path(tmp) / f"b{index}")
            except _Slow:
                problems = [f"slow: more than {SLOW_S} s"]
            finally:
                signal.alarm(0)
            for problem in problems:
                print(f"FAIL {index} {label}: {problem}", flush=True)
            print(f"done {index} {label} {time.perf_counter() - started:.1f} s", flush=True)
    print(f"{len(cases)} bound cases", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
