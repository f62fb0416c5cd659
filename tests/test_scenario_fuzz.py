"""Valid scenarios nobody wrote by hand: random small ones must run, and their verdicts must hold.

``tests/scenario_fuzz.py`` draws scenarios from the schema's ranges (leaning on the bounds) and
states what every run must satisfy. ``test_random_scenarios_run_and_their_verdicts_hold`` runs a
fixed set of seeds (CI cost: about 20 s); ``python -m tests.scenario_fuzz FIRST LAST`` runs more.
The tests after it are the minimal scenarios the fuzzer found, each reduced from the seed named
in its docstring.
"""

from __future__ import annotations

import json
from pathlib import Path

from novacron.scenario import loads_scenario
from sim.run import run_scenario
from tests.scenario_fuzz import check_summary


def _run(text: str, tmp_path: Path) -> dict[str, object]:
    scenario = loads_scenario(text, origin="test")
    run_scenario(scenario, scenario.seed, tmp_path / "run", text, report=False)
    summary_text = (tmp_path / "run" / "summary.json").read_text()
    assert check_summary(summary_text) == []
    return json.loads(summary_text)  # type: ignore[no-any-return]


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
