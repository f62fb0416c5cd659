"""Storage in scenarios: the analysis' pools as built-in scenarios, their metrics and the durability target."""

from __future__ import annotations

import pytest

from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import capabilities, loads_scenario, resolve_scenario, scenario_targets
from novacron.storage.durability import estimate_pool
from novacron.storage.events import StoragePoolAssessed
from sim.run import simulate
from tests.one_line_errors import one_line_error

SHORT = "duration_s = 60.0\n[workload]\nvms = 2\n"


@pytest.mark.parametrize(("nodes", "scheme"), [(3, "replication3"), (10, "rs6+3"), (100, "rs10+4"),
                                               (1000, "rs10+4")])
def test_the_analysis_pools_are_built_in_scenarios(nodes: int, scheme: str) -> None:
    scenario, _ = resolve_scenario(f"storage-{nodes}")
    assert (scenario.storage.enabled, scenario.storage.nodes, scenario.storage.scheme) == (True, nodes, scheme)
    assert "storage" in capabilities(scenario)


def test_a_run_assesses_its_pool_and_the_catalogue_checks_the_nines() -> None:
    scenario = loads_scenario(SHORT + "[storage]\nenabled = true\nnodes = 1000\nscheme = \"replication3\"\n",
                              origin="pool")
    log = simulate(scenario, 5).log
    assessed = [ev for ev in log if isinstance(ev, StoragePoolAssessed)]
    assert len(assessed) == 1
    metrics = compute_metrics(log)
    expected = estimate_pool(1000, 1000.0, "replication3")
    assert metrics["storage.usable_tb"] == pytest.approx(expected.usable_tb)
    assert metrics["storage.durability_nines"] == pytest.approx(expected.nines)
    targets, _ = scenario_targets(scenario)
    durability = next(t for t in targets if t.metric == "storage.durability_nines")
    assert metrics["storage.durability_nines"] < durability.threshold  # replication x3 at 1 PB: about 5 nines


def test_without_storage_the_target_does_not_apply() -> None:
    scenario = loads_scenario(SHORT, origin="plain")
    _, not_applicable = scenario_targets(scenario)
    assert "storage durability (annual, independent failures)" in not_applicable
    assert not any(isinstance(ev, StoragePoolAssessed) for ev in simulate(scenario, 5).log)


def test_a_bad_scheme_is_one_line_naming_the_allowed_ones() -> None:
    message = one_line_error(ConfigError, lambda: loads_scenario("[storage]\nscheme = \"raid5\"\n", origin="bad.toml"))
    assert "storage.scheme" in message and "rs10+4" in message


def test_both_runtimes_assess_with_the_same_function() -> None:
    """The real runtime calls ``assess_pool`` with its own recorder; the event matches the simulation's."""
    from novacron.events import InMemoryEventLog, Recorder
    from novacron.storage.assess import assess_pool

    scenario, _ = resolve_scenario("storage-100")
    log = InMemoryEventLog()
    ev = assess_pool(scenario.storage, Recorder(log, lambda: 0.0))
    simulated = next(e for e in simulate(scenario, 1).log if isinstance(e, StoragePoolAssessed))
    assert ev is not None
    assert (ev.usable_tb, ev.rebuild_h, ev.durability_nines) == (simulated.usable_tb, simulated.rebuild_h,
                                                                 simulated.durability_nines)
