"""``novacron migrate-plan``: predicts a VM's migration; bad input is a one-line error."""

from __future__ import annotations

import pytest

from novacron.app.cli import EXIT_OK, EXIT_USAGE, main


def test_migrate_plan_prints_the_prediction_and_the_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-plan", "--memory-gib", "0.5", "--wws-mib", "128", "--dirty-rate", "20000",
                 "--simulate"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "type        live" in out and "dirty syncs" in out and "simulated (QEMU model): completed" in out


def test_migrate_plan_stopped_vm_is_cold(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-plan", "--memory-gib", "4", "--stopped"]) == EXIT_OK
    assert "type        cold" in capsys.readouterr().out


def test_migrate_plan_rejects_a_working_set_larger_than_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-plan", "--memory-gib", "1", "--wws-mib", "2048"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--wws-mib" in err
