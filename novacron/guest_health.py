"""Is a migrated guest healthy? A pure reading of its serial console (no I/O here).

Theory of operation
-------------------
QEMU can report a migration ``completed`` while the guest on the destination is corrupted: with
``downtime-limit 30`` a raw-QMP migration here ended ``completed``/``running`` and the guest
kernel then panicked with ``list_add corruption`` (../shared/LAB.md). So every real migration is
followed by a look at the guest itself. The lab guest's dirtier (``backends/lab/dirtier.c``)
prints ``NOVACRON-ALIVE seq=N`` once a second after verifying a tag in every page of its working
set, and ``NOVACRON-CORRUPT`` if a tag is wrong. A guest is healthy after a migration when

1. the destination's console shows at least ``min_alive`` alive markers (the dirtier runs and
   its memory verified intact, after the switch-over),
2. their sequence numbers continue the source's (the same process, no reboot: a rebooted guest
   would start again from 0), and
3. neither console shows a corruption marker or a kernel ``BUG``/``Oops``/panic/corruption line.

The runtime reads the console files; this module only judges their text, so the judgement is
unit-tested without a VM and the verdict is recorded as a ``GuestHealthChecked`` event.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from novacron.events import Event, event

ALIVE_PATTERN = re.compile(r"NOVACRON-ALIVE seq=(\d+)")
BAD_LINE_PATTERNS = (
    re.compile(r"NOVACRON-CORRUPT"),
    re.compile(r"NOVACRON-DIRTIER-EXITED"),
    re.compile(r"\bBUG:"),
    re.compile(r"\bOops\b"),
    re.compile(r"Kernel panic"),
    re.compile(r"general protection fault"),
    re.compile(r"list_(add|del) corruption"),
    re.compile(r"\bsegfault\b"),
    re.compile(r"Call Trace:"),
)


@event
class GuestHealthChecked(Event):
    """The verdict on a guest after a real migration (``source`` names the checking host)."""

    vm_id: str
    migration_id: str
    healthy: bool
    alive_markers_after: int
    last_alive_seq_before: int
    first_alive_seq_after: int
    problem: str


@dataclass(frozen=True, slots=True)
class GuestHealth:
    healthy: bool
    alive_markers_after: int
    last_alive_seq_before: int
    first_alive_seq_after: int
    problems: tuple[str, ...]

    def describe(self) -> str:
        return "healthy" if self.healthy else "; ".join(self.problems)


def alive_seqs(console_text: str) -> list[int]:
    return [int(m.group(1)) for m in ALIVE_PATTERN.finditer(console_text)]


def bad_lines(console_text: str) -> list[str]:
    return [line.strip() for line in console_text.splitlines()
            if any(pattern.search(line) for pattern in BAD_LINE_PATTERNS)]


def assess_guest(source_console: str, destination_console: str, *, min_alive: int = 2) -> GuestHealth:
    """Judge a migrated guest from the source's and the destination's console text."""
    before, after = alive_seqs(source_console), alive_seqs(destination_console)
    last_before = before[-1] if before else -1
    first_after = after[0] if after else -1
    problems = [f"console: {line}" for line in (*bad_lines(source_console), *bad_lines(destination_console))]
    if len(after) < min_alive:
        problems.append(f"only {len(after)} alive marker(s) on the destination, need {min_alive}")
    if after and before and first_after < last_before:
        problems.append(f"alive sequence restarted (source ended at {last_before}, destination began "
                        f"at {first_after}): the guest rebooted")
    if any(b <= a for a, b in itertools.pairwise(after)):
        problems.append("alive sequence on the destination is not increasing")
    return GuestHealth(not problems, len(after), last_before, first_after, tuple(problems[:5]))
