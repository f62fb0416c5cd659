"""Trace readers on fixtures in each public format: typed records, streamed (generators)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from novacron.config import ConfigError
from novacron.scenario import loads_scenario
from sim import Simulation
from sim.run import simulate
from sim.workloads import VMDeparture, VMSpec
from sim.workloads import traces as t
from sim.workloads.trace_workload import trace_workload

TRACES = Path(__file__).parent / "fixtures" / "traces"
BITBRAINS = TRACES / "bitbrains" / "fastStorage" / "2013-8"

READERS: list[tuple[Callable[[Path], Iterator[Any]], Path, int]] = [
    (t.read_azure_packing, TRACES / "azure_packing_2020.sqlite", 60),
    (t.read_azure_vmtable, TRACES / "azure_v1" / "vmtable.csv", 40),
    (t.read_azure_vmtable, TRACES / "azure_v2" / "vmtable.csv.gz", 40),
    (t.read_azure_cpu_readings, TRACES / "azure_v1" / "vm_cpu_readings-file-1-of-125.csv", -1),
    (t.read_azure_cpu_readings, TRACES / "azure_v2" / "vm_cpu_readings-file-1-of-195.csv.gz", -1),
    (t.read_google_task_events, TRACES / "google_2011" / "task_events", -1),
    (t.read_google_machine_events, TRACES / "google_2011" / "machine_events", 6),
    (t.read_alibaba_machine_meta, TRACES / "alibaba_2018" / "machine_meta.csv", 4),
    (t.read_alibaba_machine_usage, TRACES / "alibaba_2018" / "machine_usage.csv", 40),
    (t.read_alibaba_container_meta, TRACES / "alibaba_2018" / "container_meta.csv", 48),
    (t.read_alibaba_container_usage, TRACES / "alibaba_2018" / "container_usage.csv", 720),
    (t.read_bitbrains_vm, BITBRAINS / "1.csv", -1),
]


@pytest.mark.parametrize(("reader", "path", "rows"), READERS, ids=lambda x: getattr(x, "__name__", None))
def test_readers_stream_typed_records(reader: Callable[[Path], Iterator[Any]], path: Path, rows: int) -> None:
    assert inspect.isgeneratorfunction(reader)
    stream = reader(path)
    assert inspect.isgenerator(stream)
    first = next(stream)  # one record parsed without reading the rest
    assert type(first).__name__[0].isupper()
    count = 1 + sum(1 for _ in stream)
    assert count == rows if rows >= 0 else count > 0


def test_azure_packing_joins_one_machine_generation_and_keeps_null_ends() -> None:
    vms = list(t.read_azure_packing(TRACES / "azure_packing_2020.sqlite"))
    assert [vm.start_days for vm in vms] == sorted(vm.start_days for vm in vms)
    assert any(vm.end_days is None for vm in vms)
    assert any(vm.start_days < 0 for vm in vms)
    by_type = {}
    for vm in vms:
        assert 0 < vm.core_fraction <= 1
        assert by_type.setdefault(vm.vm_type_id, vm.core_fraction) == vm.core_fraction


def test_azure_v2_buckets_parse_as_lower_bounds() -> None:
    cores = {vm.cores for vm in t.read_azure_vmtable(TRACES / "azure_v2" / "vmtable.csv.gz")}
    assert 24.0 in cores and max(cores) == 24.0
    assert t.parse_bucket(">64") == 64.0


def test_google_events_keep_microseconds_and_empty_fields() -> None:
    events = list(t.read_google_task_events(TRACES / "google_2011" / "task_events"))
    assert all(ev.timestamp_us >= t.GOOGLE_TIME_OFFSET_US for ev in events)
    submits = [ev for ev in events if ev.event_type == 0]
    assert submits and all(ev.machine_id is None for ev in submits)
    removed = [ev for ev in t.read_google_machine_events(TRACES / "google_2011" / "machine_events")
               if ev.event_type == 1]
    assert removed and removed[0].cpus is None


def test_bitbrains_reads_semicolon_tab_files_and_rejects_other_headers(tmp_path: Path) -> None:
    sample = next(t.read_bitbrains_vm(BITBRAINS / "1.csv"))
    assert sample.timestamp_s > 1_300_000_000  # Unix seconds despite the "[ms]" label
    assert sample.cpu_usage_mhz == pytest.approx(sample.cpu_capacity_mhz * sample.cpu_usage_pct / 100, rel=1e-4)
    bad = tmp_path / "1.csv"
    bad.write_text("a;b\n1;2\n")
    with pytest.raises(ValueError, match="not a Bitbrains"):
        next(t.read_bitbrains_vm(bad))


FORMATS = [
    ("azure-packing-2020", TRACES / "azure_packing_2020.sqlite"),
    ("azure-v1", TRACES / "azure_v1" / "vmtable.csv"),
    ("azure-v2", TRACES / "azure_v2" / "vmtable.csv.gz"),
    ("google-2011", TRACES / "google_2011" / "task_events"),
    ("alibaba-2018", TRACES / "alibaba_2018"),
    ("bitbrains", BITBRAINS),
]


def _trace_scenario(fmt: str, path: Path, vms: int = 0) -> str:
    return (f'name = "trace-{fmt}"\nduration_s = 7200.0\n[cluster]\nhosts = 6\nhost_cpu_cores = 64\n'
            f'host_memory_gib = 256.0\n[workload]\nvms = {vms}\ntrace_format = "{fmt}"\ntrace_path = "{path}"\n')


@pytest.mark.parametrize(("fmt", "path"), FORMATS)
def test_each_trace_format_drives_a_run(fmt: str, path: Path) -> None:
    scenario = loads_scenario(_trace_scenario(fmt, path), origin="trace.toml")
    items = trace_workload(fmt, str(path), scenario)
    assert inspect.isgenerator(items)
    specs = [i for i in items if isinstance(i, VMSpec)]
    assert specs and all(s.cpu_cores >= 1 and s.memory_gib > 0 and s.arrival_s >= 0 for s in specs)
    assert len({s.vm_id for s in specs}) == len(specs)
    ctx = simulate(scenario, 1)
    requested = [e for e in ctx.log if type(e).__name__ == "VMRequested"]
    assert requested, f"{fmt}: no VM requested in the run"


def test_google_terminal_events_become_departures() -> None:
    scenario = loads_scenario(_trace_scenario(*FORMATS[3]), origin="x")
    items = list(trace_workload("google-2011", str(FORMATS[3][1]), scenario))
    departures = [i for i in items if isinstance(i, VMDeparture)]
    arrivals = {i.vm_id for i in items if isinstance(i, VMSpec)}
    assert departures and {d.vm_id for d in departures} <= arrivals


def test_workload_vms_caps_the_arrivals_taken_from_a_trace() -> None:
    fmt, path = FORMATS[1]
    scenario = loads_scenario(_trace_scenario(fmt, path, vms=5), origin="x")
    assert sum(isinstance(i, VMSpec) for i in trace_workload(fmt, str(path), scenario)) == 5


def test_trace_format_without_path_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="go together"):
        loads_scenario('[workload]\ntrace_format = "azure-v1"\n', origin="x.toml")
    with pytest.raises(ConfigError, match="is not allowed; allowed: one of"):
        loads_scenario('[workload]\ntrace_format = "azure-v9"\ntrace_path = "x"\n', origin="x.toml")


def test_azure_cpu_readings_replace_the_synthetic_demand_as_time_passes() -> None:
    folder = TRACES / "azure_v1"
    text = _trace_scenario("azure-v1", folder / "vmtable.csv") + f'trace_readings_path = "{folder}"\n'
    scenario = loads_scenario(text, origin="x")
    sim = Simulation(scenario, seed=1)
    sim.run(until_s=1200.0)
    model = sim.model
    assert model is not None
    expected = {}
    for reading in t.read_azure_cpu_readings(folder / "vm_cpu_readings-file-1-of-125.csv"):
        if reading.timestamp_s <= 1200:
            expected[reading.vm_id] = reading.avg_cpu_pct / 100.0
    vms = model.vms
    _hosts, used, rows = model.cpu_demand_cores(1200.0)
    checked = 0
    for row, cores_used in zip(rows.tolist(), used.tolist(), strict=True):
        vm_id = vms.ids[row]
        if vm_id in expected:
            assert cores_used == pytest.approx(expected[vm_id] * vms.cpu_cores[row])
            checked += 1
    assert checked > 5
    assert inspect.isgenerator(t.read_azure_cpu_readings_series(folder))


def test_missing_readings_file_fails_with_the_key_named() -> None:
    fmt, path = FORMATS[1]
    scenario = loads_scenario(_trace_scenario(fmt, path) + 'trace_readings_path = "/nonexistent"\n', origin="x")
    with pytest.raises(FileNotFoundError, match=r"workload\.trace_readings_path"):
        Simulation(scenario, seed=1)
