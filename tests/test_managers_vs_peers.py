"""The comparison harness of ``benchmarks/managers_vs_peers.py``, in a short CI mode.

Real clusters (three NovaCron managers, PySyncObj at its defaults and tuned, a 3-member etcd 3.4)
on private loopback ports, one synchronous client and a low open-loop rate, a fraction of a
second each: the point is that every system starts, answers through the one load generator and
ends with equal replicas, not the numbers (those are in benchmarks/RESULTS_managers.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.managers_vs_peers import SYSTEMS, markdown, measure
from tests.unavailable import require_binary


@pytest.mark.etcd
def test_every_system_answers_the_same_load_generator_and_ends_with_equal_replicas(tmp_path: Path) -> None:
    require_binary("etcd", missing="etcd is not installed (apt-get install etcd-server)")
    systems = [s for s in SYSTEMS if s not in ("novacron-baseline", "novacron-sqlite")]
    rows = asyncio.run(measure(systems, tmp_path, clients=[1], rates=[40], warmup_s=0.2, measure_s=0.6,
                               log=lambda _line: None))
    assert [(r["system"], r["mode"]) for r in rows] == [(s, m) for s in systems for m in ("closed", "open")]
    for row in rows:
        assert row["errors"] == 0 and row["replicas_equal"], row
        assert row["puts_measured"] > 0 and row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], row
    table = markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "fdatasync" in table and "journal in memory" in table
