"""The guest health verdict from serial console text (pure; the lab tests use it on real consoles)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from novacron.guest_health import BAD_LINE_PATTERNS, assess_guest


def console(seqs: list[int], extra: str = "") -> str:
    return "".join(f"NOVACRON-ALIVE seq={s} pages_written={s * 100} rate=100\n" for s in seqs) + extra


def test_a_guest_that_keeps_counting_on_the_destination_is_healthy() -> None:
    health = assess_guest(console([0, 1, 2]), console([3, 4]))
    assert health.healthy, health.problems
    assert (health.last_alive_seq_before, health.first_alive_seq_after, health.alive_markers_after) == (2, 3, 2)


def test_a_kernel_panic_after_a_completed_migration_is_unhealthy() -> None:
    # the very lines the lab saw when QEMU 7.2 lost TCG stores during pre-copy
    dest = console([3]) + "[    5.02] list_add corruption. next->prev should be prev\n" + \
        "[    5.04] Kernel panic - not syncing: Fatal exception in interrupt\n"
    health = assess_guest(console([0, 1, 2]), dest)
    assert not health.healthy
    assert any("list_add corruption" in p for p in health.problems)
    assert any("only 1 alive marker" in p for p in health.problems)


def test_a_corrupted_page_reported_by_the_dirtier_is_unhealthy() -> None:
    health = assess_guest(console([0, 1]), console([2, 3], "NOVACRON-CORRUPT page=7 tag=0 expected=1\n"))
    assert not health.healthy


def test_a_rebooted_guest_is_unhealthy_even_if_it_prints_markers() -> None:
    health = assess_guest(console([0, 1, 2, 3, 4]), console([0, 1, 2]))
    assert not health.healthy
    assert any("rebooted" in p for p in health.problems)


def test_a_silent_destination_is_unhealthy() -> None:
    assert not assess_guest(console([0, 1]), "").healthy


@given(before=st.integers(0, 50), after=st.integers(2, 20), gap=st.integers(0, 3))
def test_any_continuing_sequence_is_healthy(before: int, after: int, gap: int) -> None:
    source = list(range(before + 1))
    destination = list(range(before + 1 + gap, before + 1 + gap + after))
    assert assess_guest(console(source), console(destination)).healthy


@given(pattern_index=st.integers(0, len(BAD_LINE_PATTERNS) - 1), on_source=st.booleans())
def test_any_bad_console_line_makes_the_guest_unhealthy(pattern_index: int, on_source: bool) -> None:
    samples = ["NOVACRON-CORRUPT page=1", "NOVACRON-DIRTIER-EXITED status=1", "BUG: unable to handle",
               "Oops: 0002 [#1]", "Kernel panic - not syncing", "general protection fault, probably",
               "list_del corruption", "dirtier[1]: segfault at 0", "Call Trace:"]
    line = f"[ 1.0] {samples[pattern_index]}\n"
    assert BAD_LINE_PATTERNS[pattern_index].search(line)
    source, destination = console([0, 1]), console([2, 3, 4])
    if on_source:
        source += line
    else:
        destination += line
    assert not assess_guest(source, destination).healthy
