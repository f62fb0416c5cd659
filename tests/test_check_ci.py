"""`novacron check` in CI: JUnit XML, JSON, and the exit codes 0 / 1 / 2 / 3."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from novacron.app.cli import main
from novacron.app.verdict_output import junit_xml
from novacron.slo import evaluate
from tests.scenario_snippets import ONLY_PLACEMENT

PASSING = """
name = "passing"
duration_s = 1200.0
[cluster]
hosts = 6
[workload]
vms = 20
arrival_window_s = 300.0
[faults]
enabled = false
""" + ONLY_PLACEMENT


def validate_junit(text: str) -> ET.Element:
    """The structure CI reporters rely on (the common subset of the Jenkins/Ant JUnit schema)."""
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    suites = list(root)
    assert suites and all(s.tag == "testsuite" for s in suites)
    for suite in suites:
        assert suite.get("name")
        cases = suite.findall("testcase")
        for case in cases:
            assert case.get("name") and case.get("classname")
            outcomes = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            assert len(outcomes) <= 1
            for child in case:
                assert child.tag in ("failure", "error", "skipped", "system-out", "system-err")
                if child.tag == "failure":
                    assert child.get("message") and child.get("type")
        assert int(suite.get("tests", -1)) == len(cases)
        assert int(suite.get("failures", -1)) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("skipped", -1)) == sum(c.find("skipped") is not None for c in cases)
        assert int(suite.get("errors", -1)) == 0
        for child in suite:
            assert child.tag in ("properties", "testcase")
    assert int(root.get("tests", -1)) == sum(int(s.get("tests", 0)) for s in suites)
    assert int(root.get("failures", -1)) == sum(int(s.get("failures", 0)) for s in suites)
    return root


def test_junit_has_one_testcase_per_target_and_fails_what_blocks() -> None:
    verdict = evaluate({"cluster.peak_cpu_pct": 95.0, "cluster.peak_memory_pct": 10.0,
                        "cache.l1.hit_rate_pct": 10.0, "raft.managers": 5.0})
    root = validate_junit(junit_xml(verdict, suite_name="t"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == len(verdict.results)
    assert cases["peak CPU utilisation"].find("failure").get("type") == "target missed"  # type: ignore[union-attr]
    assert cases["peak memory utilisation"].find("failure") is None
    assert cases["uptime"].find("failure").get("type") == "not measured"  # type: ignore[union-attr]
    assert cases["L1 hit rate (analysis figure)"].find("skipped") is not None
    relaxed = validate_junit(junit_xml(verdict, suite_name="t", allow_unmeasured=True))
    assert int(relaxed.find("testsuite").get("failures")) == 1  # type: ignore[union-attr, arg-type]
    assert [p.get("name") for p in root.iter("property")] == ["raft.managers"]


def test_exit_0_with_junit_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "passing.toml"
    scenario.write_text(PASSING)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress", "--json",
                 "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)  # stdout is pure JSON: the progress lines went to stderr
    assert document["passed"] is True and document["blocking"] == []
    assert document["admission"]["vms_requested"] == 20
    validate_junit(junit.read_text())


def test_exit_2_on_usage_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--no-such-flag"]) == 2
    assert main(["check", str(tmp_path / "missing.toml")]) == 2
    assert main(["check", "--seed", "-1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_exit_3_on_an_internal_error_with_the_traceback_in_the_run_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.run

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(sim.run, "run_scenario", broken)
    scenario = tmp_path / "passing.toml"
    scenario.write_text(PASSING)
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("novacron: internal error: ZeroDivisionError: planted bug")
    assert "Traceback" in (tmp_path / "run" / "error.txt").read_text()


def test_missing_extra_names_the_pip_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import builtins

    real_import = builtins.__import__

    def no_distributed(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "distributed":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    assert main(["sweep", "scale-3", "--dask-scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'novacron[dask]'" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from novacron import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"novacron {__version__}"


def test_targets_lists_catalogue_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "cluster.vms_rejected_pct <= 0 %" in out and "cluster.uptime_pct" in out
    assert "policy evaluation, 5 policies (benchmark)" in out
    assert "migration.live.downtime_p99_ms" in out
