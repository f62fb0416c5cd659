"""Valid scenarios nobody wrote by hand: random small ones must run, and their verdicts must hold.

``tests/scenario_fuzz.py`` draws scenarios from the schema's ranges (leaning on the bounds) and
states what every run must satisfy. ``test_random_scenarios_run_and_their_verdicts_hold`` runs a
fixed set of seeds (CI cost: about 35 s); ``python -m tests.scenario_fuzz FIRST LAST`` runs more,
``python -m tests.scenario_fuzz bounds`` every numeric setting at its min and its max.
The tests after it are the minimal scenarios the fuzzer found, each reduced from the seed named
in its docstring.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novacron.config import ConfigError
from novacron.scenario import loads_scenario
from novacron.slo import admission_line
from sim.run import run_scenario
from tests.scenario_fuzz import check_summary, random_scenario, run_one

SEEDS = range(1000, 1020)
CI_DURATION_S = 120.0
"""The CI set: 20 scenarios of at most 2 simulated minutes (the campaign draws up to 30)."""


@pytest.mark.slow  # the 20 together: ~35 s (one federation with cross-datacenter storage: ~20 s)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_scenarios_run_and_their_verdicts_hold(seed: int, tmp_path: Path) -> None:
    text = random_scenario(seed, max_duration_s=CI_DURATION_S)
    problems, _ = run_one(text, seed, tmp_path / "run")
    assert not problems, f"fuzz seed {seed} (python -m tests.scenario_fuzz {seed} {seed + 1}):\n" + \
        "\n".join(problems) + "\n--- scenario ---\n" + text


def test_a_random_scenario_reproduces_its_event_log(tmp_path: Path) -> None:
    seed = SEEDS[0]
    text = random_scenario(seed, max_duration_s=CI_DURATION_S)
    first = run_one(text, seed, tmp_path / "a")[1]
    assert first is not None and first == run_one(text, seed, tmp_path / "b")[1], f"fuzz seed {seed}"


def test_the_generator_is_a_function_of_its_seed() -> None:
    assert random_scenario(7) == random_scenario(7) != random_scenario(8)


def _run(text: str, tmp_path: Path) -> dict[str, object]:
    scenario = loads_scenario(text, origin="test")
    run_scenario(scenario, scenario.seed, tmp_path / "run", text, report=False)
    summary_text = (tmp_path / "run" / "summary.json").read_text()
    assert check_summary(summary_text) == []
    return json.loads(summary_text)  # type: ignore[no-any-return]


def _verdicts(summary: dict[str, object]) -> dict[str, str]:
    return {row["metric"]: row["verdict"] for row in summary["targets"]}  # type: ignore[attr-defined, index]


QUIET = """
duration_s = 5.0
[cluster]
hosts = 2
[workload]
vms = 3
arrival_window_s = 1.0
[cache]
enabled = false
[migration]
migrations = 0
"""


def test_a_lone_raft_manager_takes_decisions(tmp_path: Path) -> None:
    """Fuzz seed 23: with one manager, a proposal commits and applies inside ``propose``, so the
    control plane's pump found its decision gone (``KeyError: 'd-0000000'``)."""
    text = QUIET + "[raft]\nmanagers = 1\ncontrol_plane = \"raft\"\nsimulate_s = 0.0\n" \
                   "leader_crash_at_s = 0.0\npartition_at_s = 0.0\n"
    metrics = _run(text, tmp_path)["metrics"]
    assert metrics["cluster.vms_placed"] + metrics["cluster.vms_rejected"] == 3, "fuzz seed 23"  # type: ignore[index]


def test_requests_the_control_plane_never_answered_are_not_a_pass(tmp_path: Path) -> None:
    """Fuzz seed 14: Raft managers whose election timeout (11-25 ms) is shorter than the WAN's
    round trip never elect a leader, so no request is answered, and "VMs rejected" read 0 % and
    passed. Unanswered requests are counted apart and the share rejected is of the answered ones,
    so here it is not measured."""
    text = """
duration_s = 1.0
[cluster]
hosts = 2
[workload]
vms = 5
arrival_window_s = 0.5
[cache]
enabled = false
[migration]
migrations = 0
[raft]
managers = 3
network = "wan80"
tick_ms = 1.0
heartbeat_ticks = 1
election_ticks_min = 11
election_ticks_max = 25
control_plane = "raft"
leader_crash_at_s = 0.0
partition_at_s = 0.0
"""
    summary = _run(text, tmp_path)
    metrics = summary["metrics"]
    assert metrics["cluster.vms_placed"] == 0 and metrics["cluster.vms_unanswered"] > 0, "fuzz seed 14"  # type: ignore[index]
    assert _verdicts(summary)["cluster.vms_rejected_pct"] == "not measured", "fuzz seed 14"
    assert summary["passed"] is False
    line = admission_line(metrics)  # type: ignore[arg-type]
    assert line is not None and "(of none answered)" in line and "unanswered at the end" in line


@pytest.mark.parametrize(("text", "message"), [
    ("[storage]\nenabled = true\nnodes = 1\nscheme = \"rs8+3\"\n",
     "storage.nodes = 1 is too few for storage.scheme = 'rs8+3'; allowed: at least 11 (one node per shard)"),
    ("[scheduler]\nplacer = \"first_fit\"\n[autoscale]\npolicy = \"static\"\n",
     "autoscale.policy = 'static' needs scheduler.placer = 'scheduler'"),
    ("[scheduler]\nplacer = \"first_fit\"\n[prediction]\nmigration = true\n",
     "prediction.migration = true needs scheduler.placer = 'scheduler'"),
])
def test_scenarios_the_model_cannot_run_are_refused_in_one_line(text: str, message: str) -> None:
    """Fuzz seeds 9 (a storage pool with fewer nodes than shards: ValueError in the durability
    model), 42 and 62 (autoscaling or prediction with first fit: ValueError when the run started,
    reported as an internal error)."""
    with pytest.raises(ConfigError) as info:
        loads_scenario(text, origin="s.toml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_cache_key_bound_is_one_a_run_can_hold() -> None:
    """Bound sweep (``python -m tests.scenario_fuzz bounds``): ``cache.keys = 1000000000`` was
    accepted, and both runtimes build per-key arrays before the first request (out of memory);
    the bound is now 10^7 (a run peaked at 1.5 GB)."""
    with pytest.raises(ConfigError) as info:
        loads_scenario("[cache]\nkeys = 1000000000\n", origin="s.toml")
    assert "cache.keys = 1000000000 is out of range; allowed: an integer from 1 to 10000000" in str(info.value)
    loads_scenario("[cache]\nkeys = 10000000\n", origin="s.toml")


def test_a_cluster_with_every_host_down_measures_no_utilisation(tmp_path: Path) -> None:
    """Hand-made from the fuzzer's fault schedules: the only host crashed for good before the
    first utilisation sample, and each sample read 0 % of no capacity, so peak CPU and memory
    "passed" on a cluster that ran nothing. Samples with no host up measure nothing."""
    text = QUIET.replace("duration_s = 5.0", "duration_s = 900.0").replace("hosts = 2", "hosts = 1") + \
        "[faults]\nenabled = true\nhost_mtbf_h = 0.01\nhost_mttr_h = 100000.0\n"
    summary = _run(text, tmp_path)
    metrics, verdicts = summary["metrics"], _verdicts(summary)
    assert metrics["cluster.host_failures"] >= 1 and metrics["cluster.vms_placed"] >= 1  # type: ignore[index]
    for metric in ("cluster.peak_cpu_pct", "cluster.peak_memory_pct"):
        assert verdicts[metric] == "not measured", metric


def test_replication_without_writes_has_no_write_latency(tmp_path: Path) -> None:
    """Hand-made from the fuzzer's bounds: ``xdc_write_mib_s = 0`` replicates nothing, and the
    write latency read 0 ms and passed its target. It is not measured now, and its target does not
    apply without writes (``storage-xdc-writes``): it neither passes nor fails the run."""
    text = QUIET + """
[federation]
enabled = true
datacenters = ["us-east-1", "eu-west-1"]
vms = 0
[storage]
enabled = true
xdc_replication = "sync"
xdc_write_mib_s = 0.0
"""
    summary = _run(text, tmp_path)
    assert "storage.xdc_write_p99_ms" not in _verdicts(summary)
    assert "cross-datacenter replicated write p99" in summary["not_applicable"]  # type: ignore[operator]
    assert "storage.xdc_sync_write_p99_ms" not in summary["metrics"]  # type: ignore[operator]
