"""Every bad input the issue found: one line on stderr, exit 2, never a traceback, never a silent run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from novacron.app.cli import main
from tests.scenario_snippets import CACHE_AND_RAFT_OFF, ONLY_PLACEMENT

FIXTURES = Path(__file__).parent / "fixtures" / "traces"
SHORT = "duration_s = 600.0\n" + ONLY_PLACEMENT


def assert_one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}: {err}"
    assert err.startswith("novacron: error:") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def scenario(tmp_path: Path, workload: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(SHORT + "[workload]\n" + workload + "\n")
    return str(path)


def seeded_scenario(tmp_path: Path, seed: int) -> str:
    path = tmp_path / "seeded.toml"
    path.write_text(f"seed = {seed}\n" + SHORT + "[workload]\nvms = 5\n")
    return str(path)


def check(tmp_path: Path, path: str) -> list[str]:
    return ["check", path, "--out", str(tmp_path / "run"), "--no-progress"]


def test_binary_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(bytes(range(256)))
    assert_one_line_exit_2(check(tmp_path, str(path)), capsys, "not UTF-8")


def test_empty_vm_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, "vm_cpu_cores = []\nvm_memory_gib = []")
    assert_one_line_exit_2(check(tmp_path, path), capsys, "must not be empty")


def test_missing_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, 'trace_format = "azure-v1"\ntrace_path = "nowhere.csv"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "no such file", str(tmp_path / "nowhere.csv"))


def test_garbage_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vmtable.csv").write_text("vm1,sub,dep,0,3600,10,5,8,cat,2,4\nvm2,sub,dep,zero,3600\n")
    path = scenario(tmp_path, 'trace_format = "azure-v1"\ntrace_path = "vmtable.csv"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "line 2")


def test_wrong_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = FIXTURES / "alibaba_2018" / "container_meta.csv"
    path = scenario(tmp_path, f'trace_format = "azure-v1"\ntrace_path = "{meta}"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "line 1", "Azure vmtable")


def test_corrupt_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "packing.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(200))
    path = scenario(tmp_path, 'trace_format = "azure-packing-2020"\ntrace_path = "packing.sqlite"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "packing.sqlite")


def test_bad_readings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "readings.csv").write_text("0,vm,1,2\n")
    path = scenario(tmp_path, f'trace_format = "azure-v1"\ntrace_path = "{FIXTURES / "azure_v1" / "vmtable.csv"}"\n'
                              'trace_readings_path = "readings.csv"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "readings.csv: line 1")


def test_empty_trace_is_an_error_unless_vms_is_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vmtable.csv").write_text("")
    path = scenario(tmp_path, 'trace_format = "azure-v1"\ntrace_path = "vmtable.csv"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "no VM in it")
    allowed = scenario(tmp_path, 'vms = 0\ntrace_format = "azure-v1"\ntrace_path = "vmtable.csv"', "zero.toml")
    assert main(["run", allowed, "--out", str(tmp_path / "zero"), "--no-progress"]) == 0


def test_trace_folder_one_level_too_high(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, f'trace_format = "google-2011"\ntrace_path = "{FIXTURES / "google_2011"}"')
    assert_one_line_exit_2(check(tmp_path, path), capsys, "no VM in it")


def test_trace_path_is_relative_to_the_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "plan"
    folder.mkdir()
    shutil.copy(FIXTURES / "azure_v1" / "vmtable.csv", folder / "vmtable.csv")
    path = scenario(folder, 'vms = 5\ntrace_format = "azure-v1"\ntrace_path = "vmtable.csv"')
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    assert main(["run", path, "--out", str(tmp_path / "run"), "--no-progress"]) == 0


def _trace_file(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


CACHE_EVAL_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("binary as csv", lambda p: [_trace_file(p, "b.bin", bytes(range(256)) * 4), "--format", "csv"], "not a CSV"),
    ("negative time", lambda p: [_trace_file(p, "t.csv", b"time,key,size\n-1,1,10\n")], "time -1"),
    ("negative size", lambda p: [_trace_file(p, "t.csv", b"time,key,size\n1,1,-10\n")], "size -10"),
    ("unordered", lambda p: [_trace_file(p, "t.csv", b"time,key,size\n5,1,10\n4,2,10\n")], "time order"),
    ("empty", lambda p: [_trace_file(p, "t.csv", b"")], "no requests"),
    ("header only", lambda p: [_trace_file(p, "t.csv", b"time,key,size\n")], "no requests"),
    ("oracle truncated", lambda p: [_trace_file(p, "t.bin", bytes(30))], "trailing bytes"),
    ("missing file", lambda p: [str(p / "none.csv")], "cannot read"),
    ("l1 zero", lambda p: [_trace_file(p, "t.csv", b"time,key,size\n1,1,1\n"), "--l1-items", "0"], "--l1-items"),
    ("l2 negative", lambda p: [_trace_file(p, "t.csv", b"time,key,size\n1,1,1\n"), "--l2-items", "-1"], "--l2-items"),
]


@pytest.mark.parametrize(("case", "argv", "needle"), CACHE_EVAL_CASES, ids=[c[0] for c in CACHE_EVAL_CASES])
def test_cache_eval_bad_input(case: str, argv: Callable[[Path], list[str]], needle: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["cache-eval", *argv(tmp_path)], capsys, needle)


def test_cache_eval_zero_means_no_such_tier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace_file(tmp_path, "t.csv", b"time,key,size\n" + b"".join(
        f"{i},{i % 7},100\n".encode() for i in range(200)))
    assert main(["cache-eval", trace, "--l1-items", "2", "--l2-items", "0", "--l3-bytes", "0", "--json"]) == 0
    levels = json.loads(capsys.readouterr().out)["levels"]
    assert list(levels) == ["l1", "overall"]
    assert main(["cache-eval", trace, "--l1-items", "2", "--l2-items", "0", "--l3-bytes", "1000", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["levels"]) == ["l1", "l3", "overall"]


@pytest.mark.parametrize("argv", [["--objects", "-5"], ["--requests", "-1"], ["--size", "-1"], ["--rate", "0"],
                                  ["--alpha", "nan"]])
def test_cache_trace_bad_counts(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["cache-trace", str(tmp_path / "t.bin"), *argv], capsys)


def test_cache_trace_into_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["cache-trace", str(tmp_path / "no" / "t.bin"), "--requests", "10"], capsys,
                           "does not exist")


def test_report_on_corrupt_parquet_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", scenario(tmp_path, "vms = 5"), "--out", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    good_events = (run_dir / "events.parquet").read_bytes()
    (run_dir / "events.parquet").write_bytes(good_events[: len(good_events) // 2])
    assert_one_line_exit_2(["report", str(run_dir)], capsys, "not a readable event log")
    (run_dir / "events.parquet").write_bytes(good_events)
    (run_dir / "summary.json").write_text('{"seed": 1')
    assert_one_line_exit_2(["report", str(run_dir)], capsys, "not a readable summary")
    (run_dir / "summary.json").write_text('{"seed": 1}')
    assert_one_line_exit_2(["report", str(run_dir)], capsys, "missing")


# --- bad flags found by probing every command (branch cli-errors) ----------------------------------
# Each case: exit 2 with one line naming the flag, its value and what is allowed, before any work
# starts; ``untouched`` is a path the command must not have created (nothing half-written).

MAX_SEED = 2**63 - 1
Case = tuple[str, Callable[[Path], list[str]], tuple[str, ...], str | None]


def _file(p: Path) -> str:
    (p / "a-file").write_text("x")
    return str(p / "a-file")


def assert_usage_error_before_work(argv: list[str], needles: tuple[str, ...], untouched: Path | None,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(argv, capsys, *needles)
    if untouched is not None:
        assert not untouched.exists(), f"{untouched} was created"


def _ids(cases: list[Case]) -> list[str]:
    return [c[0] for c in cases]


SEED_CASES: list[Case] = [
    ("run seed negative", lambda p: ["run", scenario(p, "vms = 5"), "--seed", "-1", "--out", str(p / "o")],
     ("--seed", "-1", f"0 to {MAX_SEED}"), "o"),
    ("vopr seed negative", lambda p: ["vopr", "--seed", "-1", "--trace-dir", str(p / "t")], ("--seed", "-1"), None),
    ("vopr first seed negative", lambda p: ["vopr", "--first-seed", "-3", "--seeds", "1"], ("--first-seed", "-3"),
     None),
    ("vopr seeds past the last seed", lambda p: ["vopr", "--first-seed", str(MAX_SEED), "--seeds", "2"],
     ("--seeds 2", str(MAX_SEED)), None),
    ("sweep seeds past the last seed",
     lambda p: ["sweep", seeded_scenario(p, MAX_SEED - 1), "--seeds", "3", "--out", str(p / "s")],
     ("--seeds 3", "1 to 2", str(MAX_SEED)), "s"),
    ("size seeds past the last seed",
     lambda p: ["size", seeded_scenario(p, MAX_SEED), "--param", "cluster.hosts", "--seeds", "2",
                "--out", str(p / "z")],
     ("--seeds 2", "1 to 1", str(MAX_SEED)), "z"),
    ("fig16 seed too big", lambda p: ["raft-fig16", "--seed", str(2**70), "--out", str(p / "f")],
     ("--seed", str(2**70)), "f"),
]


@pytest.mark.parametrize(("case", "argv", "needles", "untouched"), SEED_CASES, ids=_ids(SEED_CASES))
def test_bad_seeds(case: str, argv: Callable[[Path], list[str]], needles: tuple[str, ...], untouched: str | None,
                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error_before_work(argv(tmp_path), needles, untouched and tmp_path / untouched, capsys)


def _run_dir_stub(p: Path) -> str:
    """A folder that passes the 'is a run directory' check; the flags are checked before it is read."""
    (p / "run").mkdir(exist_ok=True)
    (p / "run" / "events.parquet").write_bytes(b"PAR1")
    return str(p / "run")


OUTPUT_CASES: list[Case] = [
    ("fig16 zero trials", lambda p: ["raft-fig16", "--trials", "0", "--out", str(p / "f")], ("--trials 0",), "f"),
    ("fig16 out is a file", lambda p: ["raft-fig16", "--trials", "1", "--out", _file(p)], ("--out", "is a file"),
     None),
    ("run out is a file", lambda p: ["run", scenario(p, "vms = 5"), "--out", _file(p)], ("--out", "is a file"),
     None),
    ("sweep out unwritable", lambda p: ["sweep", scenario(p, "vms = 5"), "--param", "cluster.hosts=3", "--out",
                                        str(Path(_file(p)) / "sub")], ("--out", "cannot create"), None),
    ("size out is a file", lambda p: ["size", scenario(p, "vms = 5"), "--param", "cluster.hosts", "--min", "3",
                                      "--max", "3", "--seeds", "1", "--workers", "1", "--out", _file(p)],
     ("--out", "is a file"), None),
    ("export-metrics out is a folder", lambda p: ["export-metrics", _run_dir_stub(p), "--out", str(p)],
     ("--out", "is a folder"), None),
    ("export-metrics out in a missing folder", lambda p: ["export-metrics", _run_dir_stub(p), "--out",
                                                          str(p / "no" / "m.txt")], ("--out", "does not exist"), None),
    ("compare plot not an image", lambda p: ["compare", str(p), str(p), "--plot", str(p / "c.txt")],
     ("--plot", "c.txt", ".png"), None),
    ("compare plot without suffix", lambda p: ["compare", str(p), str(p), "--plot", str(p / "c")],
     ("--plot", "no suffix"), None),
    ("check junit is a folder", lambda p: ["check", scenario(p, "vms = 5"), "--junit", str(p), "--out",
                                           str(p / "o"), "--no-progress"], ("--junit", "is a folder"), "o"),
]


@pytest.mark.parametrize(("case", "argv", "needles", "untouched"), OUTPUT_CASES, ids=_ids(OUTPUT_CASES))
def test_bad_output_paths(case: str, argv: Callable[[Path], list[str]], needles: tuple[str, ...],
                          untouched: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error_before_work(argv(tmp_path), needles, untouched and tmp_path / untouched, capsys)
    assert not list(tmp_path.rglob("*.partial")), "a half-written file was left behind"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("good-run")
    run_dir = folder / "run"
    assert main(["run", scenario(folder, "vms = 5"), "--out", str(run_dir), "--no-progress"]) == 0
    return run_dir


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_compare_with_a_corrupt_event_log(damage: str, good_run: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(good_run, broken)
    log = broken / "events.parquet"
    log.write_bytes(log.read_bytes()[: log.stat().st_size // 2] if damage == "truncated" else b"")
    capsys.readouterr()
    assert_one_line_exit_2(["compare", str(good_run), str(broken), "--no-plot"], capsys,
                           "RUN_B", "events.parquet: not a readable event log")


BENCH_CASES: list[Case] = [
    ("tolerance nan", lambda p: ["bench", "--benchmarks", str(p), "--tolerance", "nan"], ("--tolerance nan",), None),
    ("tolerance negative", lambda p: ["bench", "--benchmarks", str(p), "--tolerance", "-1"], ("--tolerance -1",),
     None),
    ("compare not a benchmark json", lambda p: ["bench", "--benchmarks", str(p), "--compare",
                                                _trace_file(p, "b.json", b'{"benchmarks": [{"name": "x"}]}')],
     ("--compare", "not a benchmark JSON", "benchmarks[0].stats.median = None"), None),
    ("compare not json", lambda p: ["bench", "--benchmarks", str(p), "--compare", _trace_file(p, "b.json", b"{oops")],
     ("--compare", "not a benchmark JSON", "Expecting property name"), None),
    ("compare missing", lambda p: ["bench", "--benchmarks", str(p), "--compare", str(p / "nope.json")],
     ("--compare", "nope.json", "cannot read it"), None),
]


@pytest.mark.parametrize(("case", "argv", "needles", "untouched"), BENCH_CASES, ids=_ids(BENCH_CASES))
def test_bad_bench_flags_before_the_benchmarks_run(case: str, argv: Callable[[Path], list[str]],
                                                   needles: tuple[str, ...], untouched: str | None, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error_before_work(argv(tmp_path), needles, None, capsys)


DASK_CASES: list[Case] = [
    ("sweep", lambda p: ["sweep", scenario(p, "vms = 5"), "--param", "cluster.hosts=3", "--dask-scheduler", "notaurl",
                         "--out", str(p / "sw")], ("--dask-scheduler", "notaurl", "HOST:PORT"), "sw"),
    ("run partitioned", lambda p: ["run", "federation-3dc", "--dask-scheduler", "http://h:1", "--out", str(p / "o")],
     ("--dask-scheduler", "http://h:1"), "o"),
]


@pytest.mark.parametrize(("case", "argv", "needles", "untouched"), DASK_CASES, ids=_ids(DASK_CASES))
def test_bad_dask_scheduler_address(case: str, argv: Callable[[Path], list[str]], needles: tuple[str, ...],
                                    untouched: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    assert_usage_error_before_work(argv(tmp_path), needles, untouched and tmp_path / untouched, capsys)


MANAGER_CASES: list[Case] = [
    ("cluster status timeout nan", lambda p: ["cluster", "status", "--peers", "1=127.0.0.1:1", "--timeout", "nan"],
     ("--timeout nan",), None),
    ("cluster without subcommand", lambda p: ["cluster"], ("SUBCOMMAND", "novacron cluster --help"), None),
    ("manager peer port out of range", lambda p: ["manager", "--id", "1", "--peers", "1=127.0.0.1:99999",
                                                  "--data-dir", str(p / "m")], ("99999", "1 to 65535"), "m"),
    ("manager client port out of range", lambda p: ["manager", "--id", "1", "--peers", "1=127.0.0.1:7001",
                                                    "--client-port", "70000", "--data-dir", str(p / "m")],
     ("--client-port 70000",), "m"),
]


@pytest.mark.parametrize(("case", "argv", "needles", "untouched"), MANAGER_CASES, ids=_ids(MANAGER_CASES))
def test_bad_manager_flags_before_anything_starts(case: str, argv: Callable[[Path], list[str]],
                                                  needles: tuple[str, ...], untouched: str | None, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error_before_work(argv(tmp_path), needles, untouched and tmp_path / untouched, capsys)


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "../../etc", "a\\b", "tab\there"])
def test_scenario_name_stays_one_folder(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"name = {json.dumps(name)}\n")  # a JSON string is a TOML basic string
    assert_one_line_exit_2(["run", str(path), "--out", str(tmp_path / "o")], capsys, "name = ", "allowed")
    assert not (tmp_path / "o").exists()


def test_a_name_with_spaces_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "my plan 2"\n')
    assert main(["targets", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("hosts", [["notauri"], [""], ["qemu:///system", "ssh root@b"]])
def test_host_uris_in_a_scenario_are_libvirt_uris(hosts: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"[runtime]\nhosts = {json.dumps(hosts)}\n")
    assert_one_line_exit_2(["targets", str(path)], capsys, "runtime.hosts", "not a libvirt URI", "qemu:///system")


def test_host_uris_on_the_command_line_are_checked_before_the_real_runtime_starts() -> None:
    from backends.realrun.support import check_supported
    from novacron.config import ConfigError
    from novacron.scenario import resolve_scenario
    from tests.one_line_errors import one_line_error

    scenario, _ = resolve_scenario("lab-small")
    message = one_line_error(ConfigError, lambda: check_supported(scenario, ("notauri", "qemu:///system")))
    assert "--hosts 'notauri' is not a libvirt URI" in message
    check_supported(scenario, ("qemu:///system", "qemu+ssh://root@host-b/system"))


def test_calibrate_checks_its_host_uris_before_building_the_guest(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from backends.lab import lab

    def must_not_start(*_: object) -> None:
        raise AssertionError("the lab guest was built for bad --hosts")

    monkeypatch.setattr(lab, "running_lab", lambda: None)
    monkeypatch.setattr(lab, "guest_only", must_not_start)
    monkeypatch.setattr(lab, "up", must_not_start)
    assert_one_line_exit_2(["calibrate", "--hosts", "a", "b"], capsys, "--hosts 'a' is not a libvirt URI")


def test_an_enum_setting_out_of_its_choices_is_not_a_type_error(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[faults]\nrepair_distribution = "weird"\n')
    assert_one_line_exit_2(["targets", str(path)], capsys, "faults.repair_distribution = 'weird' is not allowed",
                           "'lognormal'")


def test_a_scenario_saved_with_a_byte_order_mark_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes(b'\xef\xbb\xbfname = "plan"\n[cluster]\nhosts = 3\n')  # Notepad saves UTF-8 with a BOM
    assert main(["targets", str(path)]) == 0, capsys.readouterr().err


def test_a_list_setting_says_what_its_items_may_be(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[workload]\nvm_cpu_cores = [1, "2"]\n')
    assert_one_line_exit_2(["targets", str(path)], capsys, "allowed: a list of integers from 1 to 256")


NEGATIVE_VALUE_CASES: list[Case] = [
    ("duration with a unit", lambda p: ["run", scenario(p, "vms = 5"), "--duration", "-1h", "--out", str(p / "o")],
     ("--duration -1h", "allowed: 1 s to 366 d"), "o"),
    ("seed with garbage", lambda p: ["vopr", "--seed", "-1x"], ("--seed", "-1x", "allowed"), None),
    ("start time in e-notation", lambda p: ["export-metrics", _run_dir_stub(p), "--start-unix-s", "-1e3"],
     ("--start-unix-s -1000", "allowed"), None),
]


@pytest.mark.parametrize(("case", "argv", "needles", "untouched"), NEGATIVE_VALUE_CASES,
                         ids=_ids(NEGATIVE_VALUE_CASES))
def test_a_negative_looking_value_reaches_its_check(case: str, argv: Callable[[Path], list[str]],
                                                    needles: tuple[str, ...], untouched: str | None,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'-1h' is a (bad) value, not an unknown option: the message names it and what is allowed."""
    assert_usage_error_before_work(argv(tmp_path), needles, untouched and tmp_path / untouched, capsys)


LAB_MD = (Path(__file__).resolve().parent.parent / "novacron" / "calibrations" / "lab-md.toml").read_text()


def _profile(p: Path, content: bytes) -> str:
    (p / "cal.toml").write_bytes(content)
    return str(p / "cal.toml")


PROFILE_FILE_CASES: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("binary", bytes(range(256)), ("cal.toml", "not UTF-8", "allowed: a TOML file")),
    ("latin-1", LAB_MD.replace("hand-set", "händ-set").encode("latin-1"), ("cal.toml", "not UTF-8")),
    ("utf-16", LAB_MD.encode("utf-16"), ("cal.toml", "not UTF-8")),
]


@pytest.mark.parametrize(("case", "content", "needles"), PROFILE_FILE_CASES, ids=[c[0] for c in PROFILE_FILE_CASES])
def test_a_profile_file_that_is_not_text(case: str, content: bytes, needles: tuple[str, ...], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["migrate-plan", "--memory-gib", "1", "--calibration", _profile(tmp_path, content)],
                           capsys, *needles)
    path = tmp_path / "s.toml"
    path.write_text(f'duration_s = 600.0\n{CACHE_AND_RAFT_OFF}[migration]\nmigrations = 0\ncalibration = "cal.toml"\n')
    assert_usage_error_before_work(["run", str(path), "--out", str(tmp_path / "o")], needles, tmp_path / "o", capsys)


def test_a_profile_saved_with_a_byte_order_mark_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _profile(tmp_path, b"\xef\xbb\xbf" + LAB_MD.encode())  # as a scenario with one does
    assert main(["migrate-plan", "--memory-gib", "1", "--calibration", path]) == 0, capsys.readouterr().err
    assert "profile     lab-md" in capsys.readouterr().out


PROFILE_TYPE_CASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("schema version true", LAB_MD.replace("schema_version = 1", "schema_version = true"),
     ("cal.toml", "schema_version = True", "allowed: 1")),
    ("schema version float", LAB_MD.replace("schema_version = 1", "schema_version = 1.0"),
     ("cal.toml", "schema_version = 1.0", "allowed: 1")),
    ("description not text", LAB_MD.replace('description = "hand-set', 'description = 3\n# "'),
     ("cal.toml", "description = 3", "allowed: a string")),
    ("runs not whole", LAB_MD.replace("runs = 9", "runs = 1.5"),
     ("cal.toml", "provenance.runs = 1.5", "allowed: an integer")),
]


@pytest.mark.parametrize(("case", "text", "needles"), PROFILE_TYPE_CASES, ids=[c[0] for c in PROFILE_TYPE_CASES])
def test_a_profile_field_of_the_wrong_type_is_refused_not_coerced(case: str, text: str, needles: tuple[str, ...],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["migrate-plan", "--memory-gib", "1", "--calibration", _profile(tmp_path, text.encode())],
                           capsys, *needles)


@pytest.mark.parametrize("memory", ["1e300", "1.7976931348623157e308", "65537"])
def test_migrate_plan_memory_past_the_largest_host(memory: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["migrate-plan", "--memory-gib", memory], capsys, "--memory-gib", "<= 65536")


def test_migrate_plan_memory_of_the_largest_host_plans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-plan", "--memory-gib", "65536"]) == 0, capsys.readouterr().err


def test_migrate_plan_working_set_larger_than_the_non_zero_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["migrate-plan", "--memory-gib", "4", "--nonzero-gib", "0.1", "--wws-mib", "1024"], capsys,
                           "--wws-mib 1024", "--nonzero-gib 0.1", "allowed:")


def test_migrate_plan_working_set_larger_than_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["migrate-plan", "--memory-gib", "2", "--wws-mib", "4096"], capsys,
                           "--wws-mib 4096", "allowed: at most 2048 MiB")


def test_migrate_plan_a_writing_guest_with_no_non_zero_memory(capsys: pytest.CaptureFixture[str]) -> None:
    """Every page written is non-zero: the dirty rate would have been ignored (working set 0 MiB)."""
    assert_one_line_exit_2(["migrate-plan", "--memory-gib", "4", "--nonzero-gib", "0", "--dirty-rate", "100000"],
                           capsys, "--nonzero-gib 0", "--dirty-rate 100000", "allowed:")


def test_vopr_seeds_beyond_what_fits(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["vopr", "--seeds", str(10**12)], capsys, "--seeds 1000000000000", "1 to 10000000")
