"""The simulated QEMU migration against the figures measured in LAB.md (QEMU 7.2, 512 MiB guest,
128 MiB working set, defaults 128 MiB/s and 300 ms). Acceptance: total time and bytes within
25 %, dirty-sync counts within one."""

from __future__ import annotations

import pytest

from novacron.migration.protocol import GIB, MIB, JobStatus
from sim.migration.qemu_model import QemuMigration, lab_guest, run_alone

TOLERANCE = 0.25


def lab_run(rate: float, *, bandwidth: float = 128 * MIB, auto_converge: bool = False, xbzrle: bool = False,
            until_s: float = 40.0, postcopy_after_s: float | None = None) -> QemuMigration:
    m = QemuMigration(guest=lab_guest(rate), downtime_limit_ms=300.0, max_bandwidth_bytes_s=bandwidth,
                      auto_converge=auto_converge, xbzrle=xbzrle)
    return run_alone(m, until_s=until_s, postcopy_after_s=postcopy_after_s)


# (label, dirty pages/s, options, total ms, MiB sent, syncs) — LAB.md "Measured" table
CONVERGING = [
    ("idle", 0, {}, 473, 68, 3),
    ("2,000 pages/s", 2_000, {}, 1_433, 198, 3),
    ("20,000 pages/s", 20_000, {}, 2_134, 301, 6),
    ("20,000 pages/s at 1 GiB/s", 20_000, {"bandwidth": GIB}, 728, 231, 3),
    ("20,000 pages/s with xbzrle", 20_000, {"xbzrle": True}, 2_131, 288, 6),
    ("100,000 pages/s with auto-converge", 100_000, {"auto_converge": True}, 27_181, 3_357, 39),
    ("100,000 pages/s, post-copy after 3 s", 100_000, {"postcopy_after_s": 3.0}, 3_361, 505, 5),
]


@pytest.mark.parametrize(("label", "rate", "options", "total_ms", "mib", "syncs"), CONVERGING,
                         ids=[row[0] for row in CONVERGING])
def test_converging_rows_match_lab(label: str, rate: float, options: dict[str, object], total_ms: float,
                                   mib: float, syncs: int) -> None:
    m = lab_run(rate, **options)  # type: ignore[arg-type]
    assert m.status is JobStatus.COMPLETED, f"{label}: {m.status}"
    assert m.elapsed_s * 1000 == pytest.approx(total_ms, rel=TOLERANCE), label
    assert m.bytes_sent / MIB == pytest.approx(mib, rel=TOLERANCE), label
    assert abs(m.syncs - syncs) <= 1, f"{label}: {m.syncs} syncs, LAB {syncs}"


# (label, rate, options, seconds observed, MiB sent by then, syncs by then)
NON_CONVERGING = [
    ("20,000 pages/s at 32 MiB/s", 20_000, {"bandwidth": 32 * MIB}, 30.0, 960, 9),
    ("100,000 pages/s at QEMU defaults", 100_000, {}, 40.0, 5_121, 56),
]


@pytest.mark.parametrize(("label", "rate", "options", "until_s", "mib", "syncs"), NON_CONVERGING,
                         ids=[row[0] for row in NON_CONVERGING])
def test_non_converging_rows_match_lab(label: str, rate: float, options: dict[str, object], until_s: float,
                                       mib: float, syncs: int) -> None:
    m = lab_run(rate, until_s=until_s, **options)  # type: ignore[arg-type]
    assert m.status is JobStatus.ACTIVE, f"{label}: QEMU never gives up by itself, got {m.status}"
    assert m.bytes_sent / MIB == pytest.approx(mib, rel=TOLERANCE), label
    assert abs(m.syncs - syncs) <= 1, f"{label}: {m.syncs} syncs, LAB {syncs}"


def test_downtimes_are_in_the_measured_range() -> None:
    """Not an acceptance criterion, but the model should not be far off: LAB 15–57 ms."""
    for rate, bandwidth, measured_ms in [(0, 128 * MIB, 17), (20_000, 128 * MIB, 32), (20_000, GIB, 57)]:
        m = lab_run(rate, bandwidth=bandwidth)
        assert m.downtime_ms is not None
        assert m.downtime_ms == pytest.approx(measured_ms, rel=0.5)


def test_auto_converge_throttles_in_qemu_steps() -> None:
    m = lab_run(100_000, auto_converge=True)
    assert m.throttle_pct >= 20.0
    assert (m.throttle_pct - 20.0) % 10.0 == pytest.approx(0.0)


def test_postcopy_downtime_is_the_switch_only_and_faults_are_counted() -> None:
    m = lab_run(100_000, postcopy_after_s=3.0)
    assert m.downtime_ms is not None and m.downtime_ms < 10
    assert m.postcopy_faults > 0


def test_dirty_phases_change_the_rate_during_the_migration() -> None:
    from dataclasses import replace

    from sim.migration.qemu_model import DirtyPhase

    burst_then_quiet = replace(lab_guest(100_000), phases=(DirtyPhase(start_s=2.0, dirty_rate_pages_s=0.0),))
    m = run_alone(QemuMigration(guest=burst_then_quiet, downtime_limit_ms=300.0, max_bandwidth_bytes_s=128 * MIB),
                  until_s=40.0)
    assert m.status is JobStatus.COMPLETED  # 100k pages/s alone never converges (see above)
    assert 2.0 < m.elapsed_s < 5.0
