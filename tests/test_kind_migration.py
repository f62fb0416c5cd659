"""Migration between workload kinds: the phase model, the batch in a run, and its metrics by path."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.app.cli import main
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.migration.dirtying import distinct_touched
from novacron.migration.kinds import PATHS, KindMigrationParams, Workload, failure_probability, plan, pre_copy_rounds
from novacron.scenario import loads_scenario, resolve_scenario
from sim.run import simulate

PARAMS = KindMigrationParams()


def workload(memory_gib: float = 2.0, dirty_mib_s: float = 50.0, wws_fraction: float = 0.125) -> Workload:
    return Workload(memory_mib=memory_gib * 1024, wws_mib=wws_fraction * memory_gib * 1024,
                    dirty_rate_mib_s=dirty_mib_s, bandwidth_mib_s=1100.0)


def test_pre_dumps_shrink_until_the_final_dump_is_small() -> None:
    rounds, final = pre_copy_rounds(workload(), PARAMS.final_dump_mib, PARAMS.max_pre_dumps)
    assert rounds[0] == 2048.0 and all(b < a for a, b in itertools.pairwise(rounds))
    assert final <= PARAMS.final_dump_mib
    idle_rounds, idle_final = pre_copy_rounds(workload(dirty_mib_s=0.0), PARAMS.final_dump_mib, 8)
    assert idle_rounds == [2048.0] and idle_final == 0.0


def test_a_round_dirties_the_distinct_part_of_the_working_set_that_random_writes_hit() -> None:
    """Random writes hit some pages twice: a round dirties ``W (1 - exp(-D t / W))``, not
    ``min(W, D t)`` (the real container migration settled at 4.3 of 8 MiB where ``min`` said 8)."""
    w = Workload(memory_mib=16.0, wws_mib=8.0, dirty_rate_mib_s=16.0, bandwidth_mib_s=11.5)
    _, final = pre_copy_rounds(w, final_mib=0.0, max_rounds=6)
    assert 4.0 < final < 6.0  # the fixed point of x = W (1 - exp(-D x / (B W))), not W
    light = Workload(memory_mib=16.0, wws_mib=8.0, dirty_rate_mib_s=1.0, bandwidth_mib_s=50.0)
    _, light_final = pre_copy_rounds(light, final_mib=0.0, max_rounds=1)
    written = 16.0 * 1.0 / 50.0
    assert light_final < written and light_final == pytest.approx(written, rel=0.03)  # few pages twice


@settings(max_examples=200, deadline=None)
@given(working_set=st.one_of(st.just(0.0), st.floats(1e-3, 1e9)), writes=st.one_of(st.just(0.0), st.floats(1e-6, 1e12)))
def test_random_writes_touch_at_most_the_writes_and_at_most_the_working_set(working_set: float,
                                                                            writes: float) -> None:
    touched = distinct_touched(working_set, writes)
    assert 0.0 <= touched <= min(working_set, writes) * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(memory_gib=st.floats(0.25, 64.0), dirty=st.floats(0.0, 5000.0), wws=st.floats(0.01, 1.0),
       path=st.sampled_from(["container_to_container", "container_to_microvm", "container_to_vm", "gpu_vm_to_gpu_vm"]))
def test_pre_dump_iterations_never_lengthen_the_downtime(memory_gib: float, dirty: float, wws: float,
                                                          path: str) -> None:
    w = workload(memory_gib, dirty, wws)
    iterative = plan(path, w, PARAMS)
    stop_and_copy = plan(path, w, dataclasses.replace(PARAMS, max_pre_dumps=0))
    assert iterative.downtime_s <= stop_and_copy.downtime_s + 1e-9
    assert iterative.downtime_s <= iterative.total_s + 1e-9 and iterative.transferred_mib >= w.memory_mib


def test_each_path_has_its_own_mechanics() -> None:
    small, big = workload(1.0), workload(8.0)
    # Re-platforming stops, converts the image and starts: the guest's memory plays no part.
    assert plan("vm_to_container", small, PARAMS).downtime_s == plan("vm_to_container", big, PARAMS).downtime_s
    # A container restored in a guest pays the hand-off on top of the same CRIU phases.
    assert plan("container_to_microvm", small, PARAMS).downtime_s == pytest.approx(
        plan("container_to_container", small, PARAMS).downtime_s + PARAMS.guest_handoff_s)
    # A snapshot moves all of the memory while paused.
    assert plan("microvm_to_microvm", big, PARAMS).downtime_s > plan("microvm_to_microvm", small, PARAMS).downtime_s
    # GPU memory moves while stopped: enough of it breaks the < 10 s target.
    gpu = plan("gpu_vm_to_gpu_vm", small, PARAMS).downtime_s
    heavy = plan("gpu_vm_to_gpu_vm", small, dataclasses.replace(PARAMS, gpu_memory_gib=16.0)).downtime_s
    assert gpu < 10.0 < heavy and heavy - gpu == pytest.approx(8 * 1024 / 1100.0)
    with pytest.raises(ValueError, match="allowed container_to_container"):
        plan("vm_to_unikernel", small, PARAMS)


def test_failure_rates_default_to_the_analysis_figures() -> None:
    assert failure_probability("gpu_vm_to_gpu_vm", PARAMS) == pytest.approx(0.012)
    assert failure_probability("container_to_container", PARAMS) == pytest.approx(0.001)


def test_the_batch_runs_every_path_and_its_metrics_follow_the_events() -> None:
    text = ("duration_s = 7200.0\n[workload]\nvms = 5\n[kind_migration]\nmigrations = 240\ninterval_s = 20.0\n"
            "memory_gib = [1.0, 4.0]\n")
    scenario = loads_scenario(text, origin="t.toml")
    events = list(simulate(scenario, 2).log)
    finished = [ev for ev in events if type(ev).__name__ == "KindMigrationFinished"]
    assert len(finished) == 240 and {ev.path for ev in finished} == set(PATHS)  # type: ignore[attr-defined]
    metrics = compute_metrics(events)
    for path in PATHS:
        mine = [ev for ev in finished if ev.path == path]  # type: ignore[attr-defined]
        done = [ev.downtime_ms for ev in mine if ev.outcome == "completed"]  # type: ignore[attr-defined]
        assert metrics[f"migration.kind.{path}.attempts"] == len(mine)
        assert metrics[f"migration.kind.{path}.success_pct"] == pytest.approx(100.0 * len(done) / len(mine))
        assert metrics[f"migration.kind.{path}.downtime_max_ms"] == pytest.approx(max(done))
        assert metrics[f"migration.kind.{path}.downtime_max_ms"] < 10_000.0


def test_failures_happen_at_the_configured_rate() -> None:
    text = ("duration_s = 40000.0\n[workload]\nvms = 1\n[kind_migration]\nmigrations = 4000\ninterval_s = 5.0\n"
            "paths = ['gpu_vm_to_gpu_vm']\n")
    metrics = compute_metrics(list(simulate(loads_scenario(text, origin="t.toml"), 4).log))
    success = metrics["migration.kind.gpu_vm_to_gpu_vm.success_pct"]
    expected, sigma = 98.8, 100 * np.sqrt(0.012 * 0.988 / 4000)
    assert abs(success - expected) < 4 * sigma


def test_bad_paths_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"^t.toml: kind_migration.paths = \['vm_to_lambda'\] is not allowed"):
        loads_scenario("[kind_migration]\nmigrations = 1\npaths = ['vm_to_lambda']\n", origin="t.toml")


def test_off_by_default() -> None:
    scenario = resolve_scenario("default", duration_s=600.0)[0]
    assert scenario.kind_migration.migrations == 0
    assert not any(type(ev).__name__ == "KindMigrationFinished" for ev in simulate(scenario, 1).log)


def test_run_prints_the_under_10_s_rows_by_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "kind-migration", "--duration", "1h", "--out", str(tmp_path), "--no-progress"]) in (0, 1)
    out = capsys.readouterr().out
    for label in ("container -> microvm", "vm -> container", "gpu vm -> gpu vm", "container -> container"):
        row = next(line for line in out.splitlines() if line.startswith(f"{label} migration downtime (max)"))
        assert "< 10000 ms" in row and row.rstrip().endswith("pass")
