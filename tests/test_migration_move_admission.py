"""The rebalancer's MoveAdmission protocol served by the migration admission controller."""

from __future__ import annotations

import pytest

from novacron.migration.admission import AdmissionController, AdmissionPolicy, HostLoad, MigrationCost
from novacron.migration.move_admission import MoveLike, RebalancerAdmission
from novacron.scheduler.admission import ConcurrencyCaps, Move, MoveAdmission


def cost(_: MoveLike) -> MigrationCost:
    c = HostLoad(cpu_pct=1.0, memory_pct=5.0, network_pct=20.0)
    return MigrationCost(source=c, destination=c)


def adapter(**policy: float) -> RebalancerAdmission:
    return RebalancerAdmission(AdmissionController(AdmissionPolicy(**policy)), cost,  # type: ignore[arg-type]
                               lambda: 0.0)


def test_it_is_a_move_admission() -> None:
    admission: MoveAdmission = adapter()
    assert admission.may_start(Move("v", "a", "b"), ())


def test_planned_moves_count_against_caps_and_headroom_like_concurrency_caps() -> None:
    ours, theirs = adapter(), ConcurrencyCaps()
    planned = [Move("v1", "a", "b"), Move("v2", "a", "c")]
    for admission in (ours, theirs):
        assert not admission.may_start(Move("v3", "a", "d"), planned)  # host a would run 3
        assert admission.may_start(Move("v3", "d", "e"), planned)
        assert not admission.may_start(Move("v1", "d", "e"), planned)  # v1 already planned
    # network: 20 % per migration, ceiling 70 %: a host takes three only if the cap allowed it
    wide = adapter(max_per_host=5)
    assert not wide.may_start(Move("v4", "x", "y"), [Move(f"w{i}", "x", f"z{i}") for i in range(3)])


def test_started_and_finished_hold_a_slot() -> None:
    ours = adapter(max_global=1)
    ours.started(Move("v", "a", "b"))
    assert ours.in_flight == 1 and ours.moves() == (Move("v", "a", "b"),)
    assert not ours.may_start(Move("w", "c", "d"), ())
    with pytest.raises(ValueError, match="cannot start"):
        ours.started(Move("w", "c", "d"))
    ours.finished("v")
    assert ours.in_flight == 0 and ours.may_start(Move("w", "c", "d"), ())
