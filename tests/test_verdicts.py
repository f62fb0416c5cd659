"""Verdicts: three of them, from one object, with the user's targets; admission and empty clusters."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from novacron.app.analysis import load_run
from novacron.app.cli import main
from novacron.config import ConfigError
from novacron.metrics import METRICS
from novacron.scenario import loads_scenario, scenario_targets
from novacron.slo import CATALOGUE, Role, RunVerdict, TargetOverride, Verdict, apply_overrides, evaluate, format_table
from tests.one_line_errors import one_line_error
from tests.scenario_snippets import CACHE_AND_RAFT_OFF, ONLY_PLACEMENT

# The scenario: 20 hosts and 400 VMs; most VMs cannot be placed (short run: admission is early).
CROWDED = """
name = "crowded"
duration_s = 1200.0
[cluster]
hosts = 20
host_cpu_cores = 16
host_memory_gib = 64.0
[workload]
vms = 400
vm_cpu_cores = [2, 4, 8]
vm_memory_gib = [8.0, 16.0, 32.0]
arrival_window_s = 300.0
""" + ONLY_PLACEMENT

QUIET = """
name = "quiet"
duration_s = 1200.0
[cluster]
hosts = 4
[workload]
vms = 20
arrival_window_s = 300.0
""" + CACHE_AND_RAFT_OFF + """[migration]
migrations = 6
start_s = 5000.0
"""
"""A migration batch that starts after the run ends: the downtime targets cannot be measured."""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_three_verdicts_and_references_never_count() -> None:
    verdict = evaluate({"cluster.peak_cpu_pct": 50.0, "cache.l1.hit_rate_pct": 10.0,
                        "cluster.peak_memory_pct": float("nan")})
    by_metric = {r.target.metric: r for r in verdict.results}
    assert by_metric["cluster.peak_cpu_pct"].verdict is Verdict.PASS
    assert by_metric["cluster.peak_memory_pct"].verdict is Verdict.NOT_MEASURED
    l1 = by_metric["cache.l1.hit_rate_pct"]
    assert l1.verdict is Verdict.FAIL and not l1.counts and l1 not in verdict.blocking()
    assert by_metric["cluster.peak_memory_pct"] in verdict.blocking()
    assert by_metric["cluster.peak_memory_pct"] not in verdict.blocking(allow_unmeasured=True)


def test_verdict_round_trips_through_its_dict() -> None:
    verdict = evaluate({"cluster.peak_cpu_pct": 90.0, "raft.managers": 5.0, "cache.l1.hit_rate_pct": 90.0})
    again = RunVerdict.from_dict(json.loads(json.dumps(verdict.as_dict())))
    assert again == verdict
    assert [s.metric for s, _ in again.settings] == ["raft.managers"]


def test_settings_are_not_targets_and_policy_evaluation_is_not_a_run_target() -> None:
    metrics = {t.metric for t in CATALOGUE}
    for echo in ("raft.heartbeat_interval_ms", "cache.l1.ttl_s", "raft.election_timeout_ms_range_ok",
                 "scheduler.policy_eval_p99_ms"):
        assert echo not in metrics


def test_every_catalogue_metric_is_documented() -> None:
    assert all(t.metric in METRICS for t in CATALOGUE)


def test_scenario_targets_override_and_add() -> None:
    scenario = loads_scenario("""
[targets]
"cluster.peak_cpu_pct" = 70
cluster.peak_memory_pct = { threshold = 50, role = "reference" }
"scheduler.decision_p99_ms" = { comparator = "<", threshold = 20, unit = "ms", name = "decision p99" }
"cluster.host_cpu_p99_pct" = { comparator = "between", threshold = [10, 90] }
""", origin="t")
    targets = {t.metric: t for t in scenario_targets(scenario)[0]}
    assert targets["cluster.peak_cpu_pct"].threshold == 70.0
    assert targets["cluster.peak_memory_pct"].role is Role.REFERENCE
    assert targets["scheduler.decision_p99_ms"].name == "decision p99"
    assert targets["cluster.host_cpu_p99_pct"].threshold == (10.0, 90.0)
    verdict = evaluate({"cluster.peak_cpu_pct": 75.0, "scheduler.decision_p99_ms": 5.0}, targets.values())
    assert [r.target.metric for r in verdict.failed] == ["cluster.peak_cpu_pct"]


@pytest.mark.parametrize(("table", "message"), [
    ('"cluster.peak_cpu" = 70', "did you mean 'cluster.peak_cpu_pct'"),
    ('"scheduler.decision_p99_ms" = 5', "a new target needs 'comparator' and 'threshold'"),
    ('"cluster.peak_cpu_pct" = { comparator = "~" }', "comparator = '~' is not allowed"),
    ('"cluster.peak_cpu_pct" = { role = "optional" }', "role = 'optional' is not allowed"),
    ('"cluster.peak_cpu_pct" = { threshold = "high" }', "threshold = 'high' is not allowed"),
    ('"cluster.peak_cpu_pct" = { limit = 3 }', "unknown key 'limit'"),
])
def test_bad_targets_are_one_line_errors(table: str, message: str) -> None:
    error = one_line_error(ConfigError, lambda: loads_scenario(f"[targets]\n{table}\n", origin="t.toml"))
    assert message in error
    assert error.startswith("t.toml: targets.")


def test_apply_overrides_keeps_catalogue_order_and_appends_new_ones() -> None:
    targets = apply_overrides(CATALOGUE, [TargetOverride(metric="run.events", comparator=">", threshold=0.0)])
    assert [t.metric for t in targets[:-1]] == [t.metric for t in CATALOGUE]
    assert targets[-1].metric == "run.events"


def test_crowded_cluster_fails_check_on_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _write(tmp_path, CROWDED)
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "VMs rejected (cluster.vms_rejected_pct): measured" in err
    assert "requested" in out and "placed" in out and "rejected" in out
    report = (tmp_path / "run" / "report.md").read_text()
    assert "VMs: 400 requested" in report and "| VMs rejected |" in report


def test_late_migration_batch_is_not_measured_and_fails_check(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _write(tmp_path, QUIET)
    run_dir = tmp_path / "run"
    assert main(["check", str(scenario), "--out", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "live migration downtime (max) (migration.live.downtime_max_ms): not measured" in err
    assert main(["check", str(scenario), "--out", str(run_dir), "--no-progress", "--allow-unmeasured"]) == 0


def test_every_format_reads_the_same_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             pytestconfig: pytest.Config) -> None:
    scenario = _write(tmp_path, QUIET)
    run_dir, junit = tmp_path / "run", tmp_path / "junit.xml"
    assert main(["check", str(scenario), "--out", str(run_dir), "--no-progress", "--json",
                 "--junit", str(junit)]) == 1
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((run_dir / "summary.json").read_text())
    run = load_run(run_dir)
    verdict = run.verdict
    assert printed["targets"] == summary["targets"] == [r.as_row() for r in verdict.results]
    assert list(run.targets["verdict"]) == [r.verdict.value for r in verdict.results]
    assert summary["missed_targets"] == [r.target.name for r in verdict.blocking()] == printed["blocking"]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    for r in verdict.results:
        case = cases[r.target.name]
        failed = case.find("failure") is not None
        assert failed == (r in verdict.blocking()), r.target.name
    markdown = (run_dir / "report.md").read_text()
    for r in verdict.blocking():
        assert f"| {r.target.name} | {r.target.describe_threshold()} | — | NOT MEASURED |" in markdown


def test_pytest_plugin_reads_the_verdict(novacron_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outcome = novacron_run(str(_write(tmp_path, QUIET)), seed=7)
    assert "live migration downtime (max)" in outcome.missed_targets
    assert not outcome.verdict.passed()
    assert outcome.verdict.passed(allow_unmeasured=True)


@pytest.mark.parametrize("workload", ["vms = 0", "vms = 20\nvm_cpu_cores = [64]\nvm_memory_gib = [8.0]"])
def test_empty_cluster_does_not_pass_utilisation_targets(tmp_path: Path, workload: str) -> None:
    """No VM asked for, or none that fits a host: the utilisation and uptime targets read "not
    measured" (they used to be dropped as not applicable, so ``check`` passed an empty cluster)."""
    scenario = _write(tmp_path, QUIET.replace("vms = 20", workload))
    assert main(["run", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    run = load_run(tmp_path / "run")
    rows = {r.target.metric: r for r in run.verdict.results}
    for metric in ("cluster.peak_cpu_pct", "cluster.peak_memory_pct", "cluster.uptime_pct",
                   "cluster.cpu_ready_p99_pct"):
        assert rows[metric].verdict is Verdict.NOT_MEASURED, metric
        assert metric not in run.metrics
    assert not run.verdict.passed()
    assert main(["check", str(scenario), "--out", str(tmp_path / "check"), "--no-progress"]) == 1


def test_scenario_without_name_takes_its_file_stem(tmp_path: Path) -> None:
    from novacron.scenario import load_scenario

    assert load_scenario(_write(tmp_path, "duration_s = 60.0\n", "my-cluster.toml")).name == "my-cluster"


def test_trace_path_resolves_against_the_scenario_folder(tmp_path: Path) -> None:
    from novacron.scenario import load_scenario

    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "vmtable.csv").write_text("")
    scenario = load_scenario(_write(folder, '[workload]\ntrace_format = "azure-v1"\ntrace_path = "vmtable.csv"\n'))
    assert scenario.workload.trace_path == str(folder / "vmtable.csv")


def test_targets_a_scenario_does_not_configure_are_counted_by_capability_in_one_line() -> None:
    """The default scenario configures no edge, federation or storage: their targets are one
    counted line, not a screen of names (the names stay in the verdict and ``summary.json``)."""
    targets, not_applicable = scenario_targets(loads_scenario("", origin="test"))
    verdict = evaluate({}, targets, not_applicable=not_applicable)
    lines = [line for line in format_table(verdict).splitlines() if line.startswith("not applicable")]
    assert len(lines) == 1
    edge = sum(1 for name in not_applicable if name.startswith("edge "))
    assert edge > 0 and f"edge {edge}" in lines[0]
    assert f"{len(not_applicable)} targets" in lines[0]
    assert not any(name in lines[0] for name in not_applicable)
    assert list(verdict.not_applicable) == list(not_applicable)


def test_the_admission_line_says_placements_when_restarts_make_them_outnumber_the_vms() -> None:
    """scale-10000 printed "500,000 requested · 517,895 placed": VMs restarted after host failures
    are placed again, so the line must say it counts placements then."""
    from novacron.slo import admission_line

    plain = admission_line({"cluster.vms_requested": 150.0, "cluster.vms_placed": 150.0, "cluster.vms_rejected": 0.0,
                            "cluster.vms_rejected_pct": 0.0})
    assert plain == "VMs: 150 requested · 150 placed · 0 rejected (0 %)"
    with_restarts = admission_line({"cluster.vms_requested": 500_000.0, "cluster.vms_placed": 517_895.0,
                                    "cluster.vms_rejected": 0.0})
    assert with_restarts is not None and "517,895 placements (restarts after host failures included)" in with_restarts
