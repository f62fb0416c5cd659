"""Scenario validation: every problem is one line naming the file, the key, the value, what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.app.cli import main
from novacron.config import ConfigError
from novacron.scenario import (
    builtin_scenario_names,
    builtin_scenario_text,
    load_scenario,
    loads_scenario,
    resolve_scenario,
)
from tests.one_line_errors import one_line_error
from tests.test_bad_input import assert_one_line_exit_2


def test_builtin_default_scenario_is_valid() -> None:
    scenario, _ = resolve_scenario(None)
    assert scenario.name == "default"
    assert "default" in builtin_scenario_names()


@pytest.mark.parametrize("name", builtin_scenario_names())
def test_every_builtin_scenario_is_valid(name: str) -> None:
    resolve_scenario(name)


@pytest.mark.parametrize(("text", "expected"), [
    ("[cluster]\nhostz = 3\n", "unknown key 'cluster.hostz'; did you mean 'cluster.hosts'?"),
    ("duraton_s = 3.0\n", "unknown key 'duraton_s'; did you mean 'duration_s'?"),
    ("[cluster]\nhosts = \"ten\"\n", "cluster.hosts = 'ten' has the wrong type; allowed: an integer from 1 to 20000"),
    ("[cluster]\nhosts = 0\n", "cluster.hosts = 0 is out of range; allowed: an integer from 1 to 20000"),
    ("[cluster]\nhosts = true\n", "cluster.hosts = True has the wrong type"),
    ("[cluster]\nhosts = 20001\n", "cluster.hosts = 20001 is out of range; allowed: an integer from 1 to 20000"),
    ("[workload]\nvms = 1000001\n", "workload.vms = 1000001 is out of range; allowed: an integer from 0 to 1000000"),
    ("[workload]\nvm_cpu_cores = [1, 2]\nvm_memory_gib = [1.0]\n", "lists of equal length"),
    ("[workload]\nvm_cpu_cores = [1, 0]\nvm_memory_gib = [1.0, 2.0]\n", "vm_cpu_cores = [1, 0] is out of range"),
    ("cluster = 3\n", "cluster must be a table"),
    ("seed = [\n", "not valid TOML"),
])
def test_invalid_scenario_gives_one_line_naming_key_value_and_allowed(text: str, expected: str) -> None:
    message = one_line_error(ConfigError, lambda: loads_scenario(text, origin="bad.toml"))
    assert message.startswith("bad.toml: ")
    assert expected in message


def test_integers_are_accepted_where_numbers_are_expected() -> None:
    assert loads_scenario("duration_s = 60\n", origin="x").duration_s == 60.0


@pytest.mark.parametrize(("text", "expected"), [
    ("[workload]\nvmss = 3\n", "unknown key 'workload.vmss'; did you mean 'workload.vms'?"),
    ("[cluster]\nhosts = 50000\n", "cluster.hosts = 50000 is out of range; allowed: an integer from 1 to 20000"),
])
def test_cli_bad_scenario_exits_2_with_one_line_naming_the_file_and_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert_one_line_exit_2(["run", str(path), "--out", str(tmp_path / "out")], capsys, expected, str(path))


def test_missing_scenario_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the scenario"):
        load_scenario(tmp_path / "nope.toml")


def test_a_builtin_dumped_by_the_scenario_command_runs_as_a_file(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``novacron scenario scale-10 > my.toml`` is how a user gets an editable copy (no copies in the repo)."""
    assert main(["scenario", "scale-10"]) == 0
    path = tmp_path / "my.toml"
    path.write_text(capsys.readouterr().out)
    assert load_scenario(path) == loads_scenario(builtin_scenario_text("scale-10"), origin="scale-10")


def test_scale_10000_is_ten_times_the_analysis_top_row_with_raft_decisions() -> None:
    scenario, _ = resolve_scenario("scale-10000")
    assert (scenario.cluster.hosts, scenario.workload.vms) == (10_000, 500_000)
    assert scenario.raft.control_plane == "raft" and scenario.faults.enabled and scenario.cache.enabled
    assert scenario.scheduler.rebalance == "balance" and scenario.migration.migrations > 0
