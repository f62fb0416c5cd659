"""Streaming readers for public cluster traces: one typed record at a time, never a whole file.

Theory of operation
-------------------
Each reader is a generator over one file (plain or gzip-compressed CSV, or SQLite), yielding a
frozen record per row with the format's documented columns in their documented order, in the
trace's own units (the field names say which: ``_us``, ``_s``, ``_days``, ``_pct``, ``_kb``).
Rows are parsed as they are read (``csv.reader`` over a line iterator; a SQLite cursor), so
memory stays constant whatever the trace's size — real traces run to hundreds of GB. A row that
does not fit its format (too few columns, text where a number belongs, a binary or corrupt file)
raises ``TraceInputError`` naming the file, the line and what was expected: one line for the
user, never a traceback, wherever in the trace it sits.

Formats (schemas as published by the trace owners):

- Azure Packing 2020 (``AzureTracesForPacking2020.md``): SQLite, table ``vm`` (vmId, tenantId,
  vmTypeId, priority, starttime, endtime; times in fractional days, negative = alive before
  collection, NULL end = still alive) and ``vmType`` (id, vmTypeId, machineId, core, memory,
  hdd, ssd, nic; fractions of one machine).
- Azure Public Dataset V1 (2017) and V2 (2019): ``vmtable.csv(.gz)`` without header: vm id,
  subscription id, deployment id, created, deleted (s from trace start), max / avg / p95-of-max
  CPU (%), category, core count, memory GB (V2: buckets such as ``>24``); CPU readings
  ``vm_cpu_readings-file-*.csv(.gz)``: timestamp (s, every 300), vm id, min, max, avg CPU (%).
- Google cluster data 2011 (``clusterdata-2011-2``, Reiss, Wilkes, Hellerstein 2011):
  ``task_events/part-*.csv.gz`` without header: timestamp (µs; 600 s offset), missing info,
  job id, task index, machine id, event type, user, scheduling class, priority, CPU request,
  memory request, disk request, different-machine constraint; ``machine_events``: timestamp,
  machine id, event type (0 add, 1 remove, 2 update), platform id, CPUs, memory (normalised).
- Alibaba cluster-trace-v2018 (``schema.md``): headerless ``machine_meta``, ``machine_usage``,
  ``container_meta``, ``container_usage`` CSVs (time in s; cpu_request 100 = one core; memory
  normalised to [0, 100]).
- Bitbrains GWA-T-12 (Shen, van Beek, Iosup, CCGrid 2015): one file per VM, ``;\\t``-separated
  with a header row; the timestamp column is labelled ``[ms]`` but holds Unix seconds.
"""

from __future__ import annotations

import csv
import gzip
import io
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from novacron.config import ConfigError

R = TypeVar("R")


class TraceInputError(ConfigError):
    """A trace file that cannot be read as its format: one line naming the file and the line."""


_READ_ERRORS = (UnicodeDecodeError, csv.Error, OSError, EOFError, zlib.error)

GOOGLE_TIME_OFFSET_US = 600_000_000
"""Google 2011: events at 0 happened before the trace window, which opens 600 s in."""


def open_text(path: str | Path) -> TextIO:
    """A text stream over a plain or gzip-compressed file (decompressed as it is read)."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def csv_rows(path: str | Path, delimiter: str = ",") -> Iterator[list[str]]:
    with open_text(path) as stream:
        yield from csv.reader(stream, delimiter=delimiter)


def _one_line(text: object, limit: int = 120) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def parsed_rows(path: str | Path, parse: Callable[[list[str]], R], what: str, *, delimiter: str = ",",
                first_line: int = 1, rows: Iterator[list[str]] | None = None) -> Iterator[R]:
    """Each CSV row through ``parse``; any problem is a ``TraceInputError`` naming the line."""
    stream = csv_rows(path, delimiter) if rows is None else rows
    line_no = first_line - 1
    try:
        for line_no, row in enumerate(stream, start=first_line):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                record = parse(row)
            except (ValueError, IndexError, TypeError) as exc:
                raise TraceInputError(f"{path}: line {line_no}: cannot read as {what} ({_one_line(exc, 80)}); "
                                      f"got {_one_line(row, 80)}") from None
            yield record
    except _READ_ERRORS as exc:
        raise TraceInputError(f"{path}: cannot read line {line_no + 1} as {what} "
                              f"({type(exc).__name__}: {_one_line(exc, 80)})") from None


def _float_or_none(text: str) -> float | None:
    return float(text) if text.strip() else None


def _int_or_none(text: str) -> int | None:
    return int(text) if text.strip() else None


# --- Azure Packing 2020 ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AzurePackingVM:
    vm_id: int
    tenant_id: int
    vm_type_id: int
    priority: int
    start_days: float
    end_days: float | None
    core_fraction: float
    memory_fraction: float


def read_azure_packing(path: str | Path) -> Iterator[AzurePackingVM]:
    """VM requests in start order, each with its type's demand on one machine generation.

    A type runs on several machine generations (one ``vmType`` row each); the row with the lowest
    ``id`` is used, so every VM of a type gets the same size. SQLite sorts on disk if needed.
    """
    try:
        connection = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise TraceInputError(f"{path}: cannot open as Azure Packing 2020 SQLite ({_one_line(exc)})") from None
    try:
        yield from _azure_packing_rows(path, connection)
    except sqlite3.Error as exc:
        raise TraceInputError(f"{path}: not an Azure Packing 2020 SQLite database with tables vm and vmType "
                              f"({_one_line(exc)})") from None
    finally:
        connection.close()


def _azure_packing_rows(path: str | Path, connection: sqlite3.Connection) -> Iterator[AzurePackingVM]:
    cursor = connection.execute(
        "SELECT v.vmId, v.tenantId, v.vmTypeId, v.priority, v.starttime, v.endtime, t.core, t.memory "
        "FROM vm AS v JOIN vmType AS t ON t.vmTypeId = v.vmTypeId "
        "AND t.id = (SELECT MIN(id) FROM vmType WHERE vmTypeId = v.vmTypeId) "
        "ORDER BY v.starttime, v.vmId")
    for number, row in enumerate(cursor, start=1):
        try:
            vm = AzurePackingVM(int(row[0]), int(row[1]), int(row[2]), int(row[3]), float(row[4]),
                                None if row[5] is None else float(row[5]), float(row[6]), float(row[7]))
        except (ValueError, TypeError) as exc:
            raise TraceInputError(f"{path}: vm row {number}: not an Azure Packing VM ({_one_line(exc, 80)}); "
                                  f"got {_one_line(row, 80)}") from None
        yield vm


# --- Azure Public Dataset V1 / V2 -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AzureVM:
    vm_id: str
    subscription_id: str
    deployment_id: str
    created_s: int
    deleted_s: int
    max_cpu_pct: float
    avg_cpu_pct: float
    p95_max_cpu_pct: float
    category: str
    cores: float
    memory_gib: float


def parse_bucket(text: str) -> float:
    """A V2 size bucket (``"8"``, ``">24"``) as a number; ``>N`` is read as N (a lower bound)."""
    return float(text.lstrip(">").strip())


def read_azure_vmtable(path: str | Path) -> Iterator[AzureVM]:
    """Rows of ``vmtable.csv`` (V1) or ``vmtable.csv.gz`` (V2); both are headerless."""
    yield from parsed_rows(path, _azure_vm, "Azure vmtable (11 columns)")


def _azure_vm(r: list[str]) -> AzureVM:
    return AzureVM(r[0], r[1], r[2], int(r[3]), int(r[4]), float(r[5]), float(r[6]), float(r[7]), r[8],
                   parse_bucket(r[9]), parse_bucket(r[10]))


@dataclass(frozen=True, slots=True)
class AzureCPUReading:
    timestamp_s: int
    vm_id: str
    min_cpu_pct: float
    max_cpu_pct: float
    avg_cpu_pct: float


def read_azure_cpu_readings(path: str | Path) -> Iterator[AzureCPUReading]:
    yield from parsed_rows(path, _azure_reading, "Azure vm_cpu_readings (timestamp, vm id, min, max, avg)")


def _azure_reading(r: list[str]) -> AzureCPUReading:
    return AzureCPUReading(int(r[0]), r[1], float(r[2]), float(r[3]), float(r[4]))


def azure_readings_files(path: str | Path) -> list[Path]:
    """A readings file, or a directory's ``vm_cpu_readings-file-N-of-M`` files in N order."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = [p for p in path.glob("vm_cpu_readings-file-*") if p.name.split("-")[2].isdigit()]
    return sorted(files, key=lambda p: int(p.name.split("-")[2]))


def read_azure_cpu_readings_series(path: str | Path) -> Iterator[AzureCPUReading]:
    """Every reading of a trace, file after file (the files partition the trace by time)."""
    for file in azure_readings_files(path):
        yield from read_azure_cpu_readings(file)


# --- Google cluster data 2011 -----------------------------------------------------------------

GOOGLE_SCHEDULE, GOOGLE_EVICT, GOOGLE_FAIL, GOOGLE_FINISH, GOOGLE_KILL, GOOGLE_LOST = 1, 2, 3, 4, 5, 6
GOOGLE_TERMINAL_EVENTS = frozenset({GOOGLE_EVICT, GOOGLE_FAIL, GOOGLE_FINISH, GOOGLE_KILL, GOOGLE_LOST})


@dataclass(frozen=True, slots=True)
class GoogleTaskEvent:
    timestamp_us: int
    missing_info: int | None
    job_id: int
    task_index: int
    machine_id: int | None
    event_type: int
    user: str
    scheduling_class: int | None
    priority: int
    cpu_request: float | None
    memory_request: float | None
    disk_request: float | None
    different_machine: int | None


def _google_parts(path: str | Path) -> list[Path]:
    """A single part file, or every ``part-*`` file of a table directory in order."""
    path = Path(path)
    return sorted(path.glob("part-*")) if path.is_dir() else [path]


def read_google_task_events(path: str | Path) -> Iterator[GoogleTaskEvent]:
    for part in _google_parts(path):
        yield from parsed_rows(part, _google_task, "Google 2011 task_events (13 columns)")


def _google_task(r: list[str]) -> GoogleTaskEvent:
    return GoogleTaskEvent(int(r[0]), _int_or_none(r[1]), int(r[2]), int(r[3]), _int_or_none(r[4]),
                           int(r[5]), r[6], _int_or_none(r[7]), int(r[8]), _float_or_none(r[9]),
                           _float_or_none(r[10]), _float_or_none(r[11]), _int_or_none(r[12]))


@dataclass(frozen=True, slots=True)
class GoogleMachineEvent:
    timestamp_us: int
    machine_id: int
    event_type: int
    platform_id: str
    cpus: float | None
    memory: float | None


def read_google_machine_events(path: str | Path) -> Iterator[GoogleMachineEvent]:
    for part in _google_parts(path):
        yield from parsed_rows(part, lambda r: GoogleMachineEvent(int(r[0]), int(r[1]), int(r[2]), r[3],
                                                                  _float_or_none(r[4]), _float_or_none(r[5])),
                               "Google 2011 machine_events (6 columns)")


# --- Alibaba cluster-trace-v2018 --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlibabaMachineMeta:
    machine_id: str
    time_stamp_s: int
    failure_domain_1: int
    failure_domain_2: str
    cpu_num: int
    mem_size: int
    status: str


@dataclass(frozen=True, slots=True)
class AlibabaMachineUsage:
    machine_id: str
    time_stamp_s: float
    cpu_util_pct: float | None
    mem_util_pct: float | None
    mem_gps: float | None
    mkpi: float | None
    net_in: float | None
    net_out: float | None
    disk_io_pct: float | None


@dataclass(frozen=True, slots=True)
class AlibabaContainerMeta:
    container_id: str
    machine_id: str
    time_stamp_s: int
    app_du: str
    status: str
    cpu_request: int
    cpu_limit: int
    mem_size: float


@dataclass(frozen=True, slots=True)
class AlibabaContainerUsage:
    container_id: str
    machine_id: str
    time_stamp_s: float
    cpu_util_pct: float | None
    mem_util_pct: float | None
    cpi: float | None
    mem_gps: float | None
    mpki: float | None
    net_in: float | None
    net_out: float | None
    disk_io_pct: float | None


def read_alibaba_machine_meta(path: str | Path) -> Iterator[AlibabaMachineMeta]:
    yield from parsed_rows(path, lambda r: AlibabaMachineMeta(r[0], int(r[1]), int(r[2]), r[3], int(r[4]),
                                                              int(r[5]), r[6]), "Alibaba machine_meta")


def read_alibaba_machine_usage(path: str | Path) -> Iterator[AlibabaMachineUsage]:
    yield from parsed_rows(path, lambda r: AlibabaMachineUsage(r[0], float(r[1]), *_floats(r, 2, 9)),
                           "Alibaba machine_usage")


def read_alibaba_container_meta(path: str | Path) -> Iterator[AlibabaContainerMeta]:
    yield from parsed_rows(path, lambda r: AlibabaContainerMeta(r[0], r[1], int(r[2]), r[3], r[4], int(r[5]),
                                                                int(r[6]), float(r[7])),
                           "Alibaba container_meta (8 columns)")


def read_alibaba_container_usage(path: str | Path) -> Iterator[AlibabaContainerUsage]:
    yield from parsed_rows(path, lambda r: AlibabaContainerUsage(r[0], r[1], float(r[2]), *_floats(r, 3, 11)),
                           "Alibaba container_usage")


def _floats(row: list[str], start: int, stop: int) -> list[float | None]:
    """Optional numeric columns ``start..stop``; a missing column is an error (IndexError)."""
    if len(row) < stop:
        raise IndexError(f"{len(row)} columns, need {stop}")
    return [_float_or_none(x) for x in row[start:stop]]


# --- Bitbrains GWA-T-12 -----------------------------------------------------------------------

BITBRAINS_HEADER = (
    "Timestamp [ms]", "CPU cores", "CPU capacity provisioned [MHZ]", "CPU usage [MHZ]", "CPU usage [%]",
    "Memory capacity provisioned [KB]", "Memory usage [KB]", "Disk read throughput [KB/s]",
    "Disk write throughput [KB/s]", "Network received throughput [KB/s]", "Network transmitted throughput [KB/s]",
)


@dataclass(frozen=True, slots=True)
class BitbrainsSample:
    timestamp_s: int
    cpu_cores: int
    cpu_capacity_mhz: float
    cpu_usage_mhz: float
    cpu_usage_pct: float
    memory_capacity_kb: float
    memory_usage_kb: float
    disk_read_kb_s: float
    disk_write_kb_s: float
    network_received_kb_s: float
    network_transmitted_kb_s: float


def read_bitbrains_vm(path: str | Path) -> Iterator[BitbrainsSample]:
    """One VM's samples; fields are separated by ``;`` followed by a tab."""
    rows = csv_rows(path, delimiter=";")
    try:
        header = next(rows, None)
    except _READ_ERRORS as exc:
        raise TraceInputError(f"{path}: cannot read as Bitbrains GWA-T-12 ({type(exc).__name__})") from None
    if header is None:
        return
    names = tuple(h.strip() for h in header)
    if names != BITBRAINS_HEADER:
        raise TraceInputError(f"{path}: not a Bitbrains GWA-T-12 file; header is {_one_line(names, 80)}, "
                              f"expected {BITBRAINS_HEADER[0]!r}; ...")
    yield from parsed_rows(path, _bitbrains_sample, "Bitbrains GWA-T-12 (11 columns)", first_line=2, rows=rows)


def _bitbrains_sample(r: list[str]) -> BitbrainsSample:
    v = [x.strip() for x in r]
    if len(v) < 11:
        raise IndexError(f"{len(v)} columns, need 11")
    return BitbrainsSample(int(float(v[0])), int(float(v[1])), *(float(x) for x in v[2:11]))


def bitbrains_files(directory: str | Path) -> list[Path]:
    """Per-VM files of a Bitbrains directory, in numeric order (``1.csv``, ``2.csv``, ...)."""
    files = [p for p in Path(directory).glob("*.csv") if p.stem.isdigit()]
    return sorted(files, key=lambda p: int(p.stem))
