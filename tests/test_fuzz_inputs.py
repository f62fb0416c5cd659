"""Fuzzing every command that reads input: malformed input is exit 2 and one line, never a traceback.

Each test calls ``main(argv)`` in-process (no subprocess per example) with at least 1,000
Hypothesis-generated malformed inputs: scenario TOML, CSV traces in each public format, the Azure
Packing SQLite, Azure CPU readings, cache traces (CSV and oracleGeneral), run directories for
``report``, and numeric flags. Inputs are built to be invalid (a corrupted field, a missing
column, a backwards time...), so no example starts a simulation.
"""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from novacron.app.cli import main
from tests.scenario_snippets import ONLY_PLACEMENT

EXAMPLES = 1000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])
SHORT = "duration_s = 60.0\n" + ONLY_PLACEMENT


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def assert_rejected(argv: list[str]) -> None:
    code, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code} for {argv}: {err[-500:]}"
    assert len(lines) == 1 and lines[0].startswith("novacron: error:"), err[-500:]
    assert "Traceback" not in err


# --- scenario TOML ---------------------------------------------------------------------------------

KEYS = {"duration_s": 60.0, "seed": 7, "cluster.hosts": 4, "cluster.cpu_overcommit": 1.0,
        "workload.vms": 10, "workload.vm_cpu_cores": [2], "workload.mean_cpu_utilisation": 0.5,
        "faults.host_mtbf_h": 100.0, "scheduler.headroom_cpu_pct": 20.0, "migration.migrations": 0}
BAD_VALUES = st.one_of(st.text(max_size=8).map(repr), st.just("true"), st.just("-1e300"), st.just("1e300"),
                       st.just("[]"), st.just("{ a = 1 }"), st.just("nan"), st.just("-inf"),
                       st.integers(-10**12, -1).map(str), st.integers(10**9, 10**15).map(str),
                       st.just('"1970-01-01"'), st.just("1979-05-27T07:32:00Z"))


def _toml_line(key: str, value: str) -> str:
    section, _, leaf = key.rpartition(".")
    return (f"[{section}]\n" if section else "") + f"{leaf} = {value}\n"


@st.composite
def bad_scenarios(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["value", "unknown", "syntax", "binary", "targets", "flavours"]))
    if kind == "value":
        key = draw(st.sampled_from(sorted(KEYS)))
        return (SHORT.replace("duration_s = 60.0\n", "") if key == "duration_s" else SHORT).encode() + \
            _toml_line(key, draw(BAD_VALUES)).encode()
    if kind == "unknown":
        name = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
        assume(name not in {"name", "seed", "duration_s", "targets"})
        return (SHORT + f"{name} = 1\n").encode()
    if kind == "syntax":
        return (SHORT + draw(st.sampled_from(["[cluster", "hosts = ", "= 3", "[[", 'name = "x'])) +
                draw(st.text(max_size=20)) + "\n").encode()
    if kind == "binary":
        return b"\xff\xfe" + draw(st.binary(max_size=200))
    if kind == "targets":
        metric = draw(st.sampled_from(["cluster.peak_cpu", "cluster.peak_cpu_pct", "raft.formation_s", "nope"]))
        spec = draw(st.sampled_from(["{ comparator = '~' }", "'high'", "{ role = 'maybe' }", "[3, 1]",
                                     "{ threshold = nan }", "{ extra = 1 }",
                                     "{ comparator = 'between', threshold = 3 }"]))
        return (SHORT + f'[targets]\n"{metric}" = {spec}\n').encode()
    sizes = draw(st.sampled_from(["vm_cpu_cores = []", "vm_cpu_cores = [1, 2]\nvm_memory_gib = [1.0]",
                                  "vm_memory_gib = []", "vm_cpu_cores = [0]"]))
    return (SHORT + f"[workload]\n{sizes}\n").encode()


@FUZZ
@given(content=bad_scenarios())
def test_fuzz_scenario_files(content: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz-scenario"
    folder.mkdir(exist_ok=True)
    path = folder / "s.toml"
    path.write_bytes(content)
    assert_rejected(["check", str(path), "--out", str(folder / "run"), "--no-progress"])


# --- public traces ---------------------------------------------------------------------------------

VALID_ROWS = {
    "azure-v1": "vm1,sub,dep,0,3600,10.0,5.0,8.0,Interactive,2,4",
    "google-2011": "605000000,,6000039595,1,,1,user,2,9,0.0125,0.0159,0.0001,0",
    "alibaba-2018": "c_1,m_1,0,app_1,started,400,400,1.56",
}
FORMAT_FILE = {"azure-v1": "vmtable.csv", "google-2011": "part-00000-of-00001.csv",
               "alibaba-2018": "container_meta.csv"}
NUMERIC_COLUMNS = {"azure-v1": [3, 4, 5, 6, 7, 9, 10], "google-2011": [0, 2, 3, 5, 8], "alibaba-2018": [2, 5, 6, 7]}
GARBAGE = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=",\r\n\x00"),
                  min_size=1, max_size=10).filter(lambda s: not _is_number(s))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@st.composite
def bad_trace(draw: st.DrawFn, fmt: str) -> bytes:
    good = VALID_ROWS[fmt].split(",")
    kind = draw(st.sampled_from(["field", "short", "binary", "empty"]))
    rows = [",".join(good)] * draw(st.integers(0, 3))
    if kind == "field":
        broken = list(good)
        broken[draw(st.sampled_from(NUMERIC_COLUMNS[fmt]))] = draw(GARBAGE)
        rows.append(",".join(broken))
    elif kind == "short":
        rows.append(",".join(good[: draw(st.integers(1, len(good) - 1))]))
    elif kind == "binary":
        return b"\xff\x00" + draw(st.binary(min_size=1, max_size=200))
    else:
        return b""
    return ("\n".join(rows) + "\n").encode()


def _trace_scenario(folder: Path, fmt: str, trace: Path, extra: str = "") -> Path:
    path = folder / "s.toml"
    path.write_text(SHORT + f'[workload]\nvms = 5\ntrace_format = "{fmt}"\ntrace_path = "{trace.name}"\n{extra}')
    return path


@pytest.mark.parametrize("fmt", sorted(VALID_ROWS))
def test_fuzz_csv_traces(fmt: str, tmp_path: Path) -> None:
    @FUZZ
    @given(content=bad_trace(fmt))
    def fuzz(content: bytes) -> None:
        trace = tmp_path / FORMAT_FILE[fmt]
        trace.write_bytes(content)
        assert_rejected(["check", str(_trace_scenario(tmp_path, fmt, trace)), "--out", str(tmp_path / "run"),
                         "--no-progress"])

    fuzz()


BITBRAINS_HEADER = ("Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\t"
                    "Memory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\t"
                    "Disk write throughput [KB/s];\tNetwork received throughput [KB/s];\t"
                    "Network transmitted throughput [KB/s]")


@FUZZ
@given(header=st.booleans(), cells=st.lists(GARBAGE.filter(lambda s: ";" not in s), min_size=1, max_size=11),
       binary=st.binary(max_size=100))
def test_fuzz_bitbrains(header: bool, cells: list[str], binary: bytes,
                        tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz-bitbrains"
    (folder / "vms").mkdir(parents=True, exist_ok=True)
    body = (BITBRAINS_HEADER + "\n" + ";\t".join(cells) + "\n").encode() if header else b"\xff" + binary
    (folder / "vms" / "1.csv").write_bytes(body)
    path = folder / "s.toml"
    path.write_text(SHORT + '[workload]\nvms = 5\ntrace_format = "bitbrains"\ntrace_path = "vms"\n')
    assert_rejected(["check", str(path), "--out", str(folder / "run"), "--no-progress"])


@FUZZ
@given(kind=st.sampled_from(["bytes", "no-tables", "bad-row"]), blob=st.binary(max_size=300), text=GARBAGE)
def test_fuzz_azure_packing(kind: str, blob: bytes, text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz-packing"
    folder.mkdir(exist_ok=True)
    trace = folder / "packing.sqlite"
    trace.unlink(missing_ok=True)
    if kind == "bytes":
        trace.write_bytes(b"SQLite format 3\x00" + blob if blob[:1] == b"\x00" else blob or b"x")
    else:
        with sqlite3.connect(trace) as db:
            db.execute("CREATE TABLE vm (vmId, tenantId, vmTypeId, priority, starttime, endtime)")
            if kind == "bad-row":
                db.execute("CREATE TABLE vmType (id, vmTypeId, machineId, core, memory, hdd, ssd, nic)")
                db.execute("INSERT INTO vm VALUES (1, 1, 1, 0, ?, NULL)", (text,))
                db.execute("INSERT INTO vmType VALUES (1, 1, 1, 0.5, 0.5, 0, 0, 0)")
        db.close()
    assert_rejected(["check", str(_trace_scenario(folder, "azure-packing-2020", trace)), "--out",
                     str(folder / "run"), "--no-progress"])


@FUZZ
@given(row=st.lists(GARBAGE, min_size=1, max_size=6), position=st.integers(0, 4))
def test_fuzz_azure_readings(row: list[str], position: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz-readings"
    folder.mkdir(exist_ok=True)
    good = ["0", "vm1", "1.0", "2.0", "1.5"]
    cells = row if len(row) < 5 else [*good[:position], row[0], *good[position + 1:]]
    assume(len(cells) < 5 or position != 1)  # the vm id is free text
    (folder / "readings.csv").write_text(",".join(cells) + "\n")
    vmtable = folder / "vmtable.csv"
    vmtable.write_text(VALID_ROWS["azure-v1"] + "\n")
    path = _trace_scenario(folder, "azure-v1", vmtable, 'trace_readings_path = "readings.csv"\n')
    assert_rejected(["check", str(path), "--out", str(folder / "run"), "--no-progress"])


# --- cache traces ----------------------------------------------------------------------------------


@st.composite
def bad_cache_csv(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["negative-time", "negative-size", "backwards", "garbage", "header", "binary",
                                 "empty"]))
    rows = ["time,key,size"]
    if kind == "negative-time":
        rows.append(f"{draw(st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False))},1,10")
    elif kind == "negative-size":
        rows.append(f"1,1,{draw(st.integers(max_value=-1))}")
    elif kind == "backwards":
        later = draw(st.integers(1, 10**9))
        rows += [f"{later},1,10", f"{draw(st.integers(0, later - 1))},2,10"]
    elif kind == "garbage":
        rows.append(f"{draw(GARBAGE)},1,10")
    elif kind == "header":
        rows = [draw(st.sampled_from(["time,key", "key,size", "a,b,c", "size"])), "1,1,1"]
    elif kind == "binary":
        return b"time,key,size\n\xff\xfe" + draw(st.binary(max_size=100))
    else:
        return b""
    return ("\n".join(rows) + "\n").encode()


@FUZZ
@given(content=bad_cache_csv())
def test_fuzz_cache_eval_csv(content: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    trace = tmp_path_factory.getbasetemp() / "fuzz-cache.csv"
    trace.write_bytes(content)
    assert_rejected(["cache-eval", str(trace), "--l1-items", "10", "--l2-items", "10", "--l3-bytes", "1000"])


@st.composite
def bad_oracle(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["truncated", "backwards", "empty"]))
    if kind == "truncated":
        records = draw(st.integers(0, 3))
        return bytes(24 * records) + draw(st.binary(min_size=1, max_size=23))
    if kind == "backwards":
        later = draw(st.integers(1, 2**32 - 1))
        earlier = draw(st.integers(0, later - 1))
        return struct.pack("<IQIq", later, 1, 10, -1) + struct.pack("<IQIq", earlier, 2, 10, -1)
    return b""


@FUZZ
@given(content=bad_oracle())
def test_fuzz_cache_eval_oracle(content: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    trace = tmp_path_factory.getbasetemp() / "fuzz-cache.bin"
    trace.write_bytes(content)
    assert_rejected(["cache-eval", str(trace), "--l1-items", "10"])


# --- run directories for report --------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("good-run")
    scenario = folder / "s.toml"
    scenario.write_text(SHORT + "[workload]\nvms = 5\n")
    assert run_cli(["run", str(scenario), "--out", str(folder / "run"), "--no-progress"])[0] == 0
    return folder / "run"


SUMMARY_KEYS = ["scenario", "seed", "runtime", "novacron_version", "events", "events_sha256", "metrics",
                "targets", "settings"]


@FUZZ
@given(kind=st.sampled_from(["summary-bytes", "summary-missing", "summary-types", "events-bytes", "targets"]),
       blob=st.binary(max_size=200), key=st.sampled_from(SUMMARY_KEYS),
       junk=st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
       cut=st.floats(0.0, 0.95))
def test_fuzz_report_run_directories(kind: str, blob: bytes, key: str, junk: object, cut: float,
                                     good_run: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz-report"
    folder.mkdir(exist_ok=True)
    summary = json.loads((good_run / "summary.json").read_text())
    events = (good_run / "events.parquet").read_bytes()
    if kind == "summary-bytes":
        (folder / "summary.json").write_bytes(b"{" + blob)
    elif kind == "summary-missing":
        del summary[key]
        (folder / "summary.json").write_text(json.dumps(summary))
    elif kind == "summary-types":
        replaced = key if key not in ("targets", "settings") else "metrics"
        summary[replaced] = junk
        assume(not isinstance(junk, str) or replaced not in ("scenario", "runtime", "novacron_version",
                                                              "events_sha256"))
        assume(not isinstance(junk, int) or replaced not in ("seed", "events"))
        (folder / "summary.json").write_text(json.dumps(summary))
    elif kind == "targets":
        summary["targets"] = [{**summary["targets"][0], "comparator": "~"}]
        (folder / "summary.json").write_text(json.dumps(summary))
    else:
        (folder / "summary.json").write_text(json.dumps(summary))
        events = events[: int(len(events) * cut)] + blob[:3]
    (folder / "events.parquet").write_bytes(events)
    assert_rejected(["report", str(folder)])


# --- numeric flags ---------------------------------------------------------------------------------

NOT_AN_INT = st.one_of(GARBAGE.filter(lambda s: not s.strip().lstrip("+-").isdigit()), st.just("1.5"))


@st.composite
def bad_flags(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(["cache-eval", "cache-trace", "check", "sweep", "size"]))
    negative = st.integers(max_value=-1).map(str)
    if command == "cache-eval":
        flag, value = draw(st.sampled_from([("--l1-items", st.one_of(negative, st.just("0"), NOT_AN_INT)),
                                            ("--l2-items", st.one_of(negative, NOT_AN_INT)),
                                            ("--l3-bytes", st.one_of(negative, NOT_AN_INT)),
                                            ("--ttl-s", st.sampled_from(["0", "-1", "nan", "inf", "x"]))]))
        return ["cache-eval", "t.csv", flag, draw(value)]
    if command == "cache-trace":
        flag, value = draw(st.sampled_from([("--objects", st.one_of(negative, st.just("0"), NOT_AN_INT)),
                                            ("--requests", st.one_of(negative, st.just("0"), NOT_AN_INT)),
                                            ("--size", st.one_of(negative, NOT_AN_INT)),
                                            ("--alpha", st.sampled_from(["-1", "nan", "inf", "11", "x"])),
                                            ("--rate", st.sampled_from(["0", "-2", "nan", "inf", "x"])),
                                            ("--seed", st.one_of(negative, NOT_AN_INT))]))
        return ["cache-trace", "/nonexistent-folder/t.bin", flag, draw(value)]
    if command == "check":
        seed = draw(st.one_of(negative, st.integers(min_value=2**63).map(str), NOT_AN_INT))
        return ["check", "scale-3", "--seed", seed, "--no-progress"]
    if command == "sweep":
        flag, value = draw(st.sampled_from([("--seeds", st.one_of(negative, st.just("0"), NOT_AN_INT)),
                                            ("--workers", st.one_of(negative, st.just("0"), NOT_AN_INT))]))
        return ["sweep", "scale-3", flag, draw(value), "--no-progress"]
    flag, value = draw(st.sampled_from([("--seeds", st.one_of(negative, st.just("0"), NOT_AN_INT)),
                                        ("--confidence", st.sampled_from(["0", "-0.5", "1.01", "nan", "x"])),
                                        ("--workers", st.one_of(negative, st.just("0"), NOT_AN_INT)),
                                        ("--max", st.just("0"))]))
    return ["size", "scale-3", "--param", "cluster.hosts", flag, draw(value), "--no-progress"]


@FUZZ
@given(argv=bad_flags())
def test_fuzz_numeric_flags(argv: list[str], tmp_path_factory: pytest.TempPathFactory,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz-flags"
    folder.mkdir(exist_ok=True)
    (folder / "t.csv").write_text("time,key,size\n1,1,1\n")
    monkeypatch.chdir(folder)
    assert_rejected(argv)


def test_fuzz_runs_in_process() -> None:
    """The fuzz tests rely on main() returning (not exiting) for every input."""
    assert "novacron.app.cli" in sys.modules
