"""The composition root runs a model with the collector's run thresholds and gives them back."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from novacron.scenario import resolve_scenario
from sim import run


def test_a_run_uses_the_run_thresholds_and_restores_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []
    advance = run._advance

    def watched(*args: Any, **kwargs: Any) -> None:
        seen.append(gc.get_threshold())
        advance(*args, **kwargs)

    monkeypatch.setattr(run, "_advance", watched)
    scenario, _ = resolve_scenario("scale-3", duration_s=600.0)
    before = gc.get_threshold()
    run.simulate(scenario, 1)
    assert seen == [run.RUN_GC_THRESHOLDS]
    assert gc.get_threshold() == before
