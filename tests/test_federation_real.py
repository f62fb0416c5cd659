"""Real managers as a federation group across three emulated regions at 150 ms RTT.

``backends.manager.wan_group.run_wan_group`` does the work (see its docstring): three real
managers, one per region namespace, their Raft frames delayed by the userspace link stages
(this kernel has no ``tc netem``), Jepsen clients, and the loss of the leader's region part-way
(SIGKILL plus an nftables cut for good); the history with final reads from the survivors must be
linearizable and keep every acknowledged write-once put. CI mode: ``NOVACRON_WAN_GROUP_S``
seconds of clients (default 12). Needs root; with ``CI=true`` the test fails rather than skips
when the namespaces cannot be built. The issue's nine-process test is ``test_federation_nine``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.manager.wan_group import run_wan_group
from novacron.raft.linearizability import PUT
from tests.unavailable import rig_needed

pytestmark = [pytest.mark.slow, pytest.mark.netns]


def test_the_group_forms_across_regions_and_survives_the_loss_of_one(tmp_path: Path) -> None:
    duration_s = float(os.environ.get("NOVACRON_WAN_GROUP_S", "12"))
    with rig_needed("the namespace rig"):
        report = run_wan_group(150.0, duration_s, duration_s / 3, seed=17, work_dir=tmp_path / "wan")
    print(report.summary())
    assert report.elected_after_start_s < 30.0 and report.formation_s < 60.0
    assert not report.jepsen.crashes, report.jepsen.crashes
    assert report.jepsen.verdict != "violation", f"not linearizable at key {report.jepsen.violation_key}"
    assert not report.jepsen.lost_acknowledged, report.jepsen.lost_acknowledged
    assert report.leader_after not in (0, report.lost_manager), "no leader took over from the lost region"
    assert report.jepsen.outcomes.get(f"{PUT} ok", 0) > 50, report.summary()
