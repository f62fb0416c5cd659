"""Public traces as workloads: each format's records adapted, as they stream, to ``VMSpec``.

Theory of operation
-------------------
Each adapter reads one trace with its streaming reader (``traces.py``) and yields workload
items in the trace's time order, converting units to the model's: seconds from the start of the
trace, whole vCPUs, GiB. Sizes a trace gives as fractions of a machine (Azure Packing, Google,
Alibaba memory) are scaled by the scenario's host size, so a trace can be replayed on the
cluster being planned. A trace without a per-VM utilisation (Azure Packing, Google, Alibaba
container meta) uses the scenario's ``mean_cpu_utilisation``; Azure vmtable and Bitbrains carry
their own average CPU. Diurnal swing and bursts come from the scenario, as for synthetic VMs.

Adapters keep only what streaming needs (the set of live task ids for Google and Alibaba), never
the trace. ``workload.vms`` caps the VMs taken from a trace (0 = all of it).

A trace that yields no VM is an error (an empty file, or a folder one level above the trace's),
unless ``workload.vms = 0`` says "all of it, whatever that is". ``check_trace`` reads the start of
the trace (and of the CPU readings) before a run, so a missing path, a wrong format or garbage
rows are a one-line ``TraceInputError`` before anything is simulated; a bad row further in is the
same error when the run reaches it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from novacron.scenario import Scenario
from sim.workloads import traces as t
from sim.workloads.spec import VMDeparture, VMSpec, WorkloadItem

DAY_S = 86400.0
GIB_PER_KB = 1.0 / (1024 * 1024)


def _spec(scenario: Scenario, vm_id: str, arrival_s: float, lifetime_s: float | None, cores: float,
          memory_gib: float, utilisation: float | None) -> VMSpec:
    w = scenario.workload
    mean = w.mean_cpu_utilisation if utilisation is None else utilisation
    values = (arrival_s, 0.0 if lifetime_s is None else lifetime_s, cores, memory_gib, mean)
    if not all(math.isfinite(v) for v in values):
        raise t.TraceInputError(f"workload.trace_path: VM {vm_id}: a time, size or utilisation is not a finite "
                                f"number (arrival {arrival_s}, lifetime {lifetime_s}, cores {cores}, "
                                f"memory {memory_gib} GiB, utilisation {mean})")
    return VMSpec(vm_id=vm_id, arrival_s=max(arrival_s, 0.0),
                  lifetime_s=None if lifetime_s is None else max(lifetime_s, 0.0),
                  cpu_cores=max(1, round(cores)), memory_gib=max(memory_gib, 0.125),
                  mean_cpu_utilisation=min(max(mean, 0.0), 1.0), diurnal_amplitude=w.diurnal_amplitude,
                  burst_probability=w.burst_probability)


def azure_packing(path: str, scenario: Scenario) -> Iterator[WorkloadItem]:
    c = scenario.cluster
    for vm in t.read_azure_packing(path):
        start_s = max(vm.start_days, 0.0) * DAY_S
        lifetime = None if vm.end_days is None else vm.end_days * DAY_S - start_s
        yield _spec(scenario, f"azp-{vm.vm_id}", start_s, lifetime, vm.core_fraction * c.host_cpu_cores,
                    vm.memory_fraction * c.host_memory_gib, None)


def azure_vmtable(path: str, scenario: Scenario) -> Iterator[WorkloadItem]:
    for vm in t.read_azure_vmtable(path):
        yield _spec(scenario, vm.vm_id, float(vm.created_s), float(vm.deleted_s - vm.created_s), vm.cores,
                    vm.memory_gib, vm.avg_cpu_pct / 100.0)


def google_2011(path: str, scenario: Scenario) -> Iterator[WorkloadItem]:
    """Tasks as VMs: SCHEDULE starts one, EVICT/FAIL/FINISH/KILL/LOST ends it."""
    c = scenario.cluster
    live: dict[tuple[int, int], str] = {}
    runs: dict[tuple[int, int], int] = {}
    for ev in t.read_google_task_events(path):
        key = (ev.job_id, ev.task_index)
        at_s = (ev.timestamp_us - t.GOOGLE_TIME_OFFSET_US) / 1e6
        if ev.event_type == t.GOOGLE_SCHEDULE and key not in live:
            runs[key] = runs.get(key, 0) + 1
            vm_id = live[key] = f"g-{ev.job_id}-{ev.task_index}-{runs[key]}"
            yield _spec(scenario, vm_id, at_s, None, (ev.cpu_request or 0.0) * c.host_cpu_cores,
                        (ev.memory_request or 0.0) * c.host_memory_gib, None)
        elif ev.event_type in t.GOOGLE_TERMINAL_EVENTS and key in live:
            yield VMDeparture(live.pop(key), max(at_s, 0.0))


def alibaba_2018(path: str, scenario: Scenario) -> Iterator[WorkloadItem]:
    """Containers as VMs, from ``container_meta.csv`` (a file, or the trace directory)."""
    meta = Path(path)
    if meta.is_dir():
        meta = meta / "container_meta.csv"
    seen: set[str] = set()
    for row in t.read_alibaba_container_meta(meta):
        if row.container_id in seen:
            continue
        seen.add(row.container_id)
        yield _spec(scenario, row.container_id, float(row.time_stamp_s), None, row.cpu_request / 100.0,
                    row.mem_size / 100.0 * scenario.cluster.host_memory_gib, None)


def bitbrains(path: str, scenario: Scenario) -> Iterator[WorkloadItem]:
    """Each per-VM file is one VM, arriving at its first sample; the earliest file is time 0."""
    firsts = []
    for file in t.bitbrains_files(path):
        first = next(t.read_bitbrains_vm(file), None)
        if first is not None:
            firsts.append((first.timestamp_s, int(file.stem), file))
    firsts.sort()
    if not firsts:
        return
    origin_s = firsts[0][0]
    for first_s, _number, file in firsts:
        last_s, cores, memory_kb, usage_sum, samples = first_s, 1, 0.0, 0.0, 0
        for sample in t.read_bitbrains_vm(file):
            last_s, cores, memory_kb = sample.timestamp_s, sample.cpu_cores, sample.memory_capacity_kb
            usage_sum += sample.cpu_usage_pct
            samples += 1
        yield _spec(scenario, f"bb-{file.stem}", float(first_s - origin_s), float(last_s - first_s), cores,
                    memory_kb * GIB_PER_KB, usage_sum / max(samples, 1) / 100.0)


ADAPTERS: Mapping[str, Callable[[str, Scenario], Iterator[WorkloadItem]]] = MappingProxyType({
    "azure-packing-2020": azure_packing,
    "azure-v1": azure_vmtable,
    "azure-v2": azure_vmtable,
    "google-2011": google_2011,
    "alibaba-2018": alibaba_2018,
    "bitbrains": bitbrains,
})


def trace_workload(trace_format: str, path: str, scenario: Scenario) -> Iterator[WorkloadItem]:
    if not Path(path).exists():
        raise t.TraceInputError(f"workload.trace_path = {path!r}: no such file or directory")
    items = ADAPTERS[trace_format](path, scenario)
    if scenario.workload.vms <= 0:
        return items
    return _not_empty(_cap_arrivals(items, scenario.workload.vms), trace_format, path)


def _not_empty(items: Iterator[WorkloadItem], trace_format: str, path: str) -> Iterator[WorkloadItem]:
    arrivals = 0
    for item in items:
        arrivals += isinstance(item, VMSpec)
        yield item
    if arrivals == 0:
        raise t.TraceInputError(
            f"workload.trace_path = {path!r}: no VM in it as {trace_format} (an empty trace, or the wrong "
            "file or folder); allowed: a trace with at least one VM, or workload.vms = 0 to accept an empty one")


CHECKED_ITEMS = 1000
"""Workload items (and CPU readings) ``check_trace`` reads before a run."""


def check_trace(scenario: Scenario) -> None:
    """Read the start of the scenario's trace and readings; raise ``TraceInputError`` on bad input."""
    w = scenario.workload
    if w.trace_format is not None and w.trace_path is not None:
        items = trace_workload(w.trace_format, w.trace_path, scenario)
        head = list(itertools.islice(items, CHECKED_ITEMS))
        if len(head) < CHECKED_ITEMS:
            list(items)  # a short trace is read to its end, which checks it is not empty
    if w.trace_readings_path is not None:
        path = Path(w.trace_readings_path)
        if not path.exists():
            raise t.TraceInputError(f"workload.trace_readings_path = {str(path)!r}: no such file or directory")
        if path.is_dir() and not t.azure_readings_files(path):
            raise t.TraceInputError(f"workload.trace_readings_path = {str(path)!r}: no vm_cpu_readings-file-* "
                                    "files in this folder")
        list(itertools.islice(t.read_azure_cpu_readings_series(path), CHECKED_ITEMS))


def _cap_arrivals(items: Iterator[WorkloadItem], limit: int) -> Iterator[WorkloadItem]:
    """The first ``limit`` arrivals; departures keep flowing (the model ignores unknown VMs)."""
    arrivals = 0
    for item in items:
        if isinstance(item, VMSpec):
            arrivals += 1
            if arrivals > limit:
                continue
        yield item


__all__ = ("ADAPTERS", "check_trace", "trace_workload")
