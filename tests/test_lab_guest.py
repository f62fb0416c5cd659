"""The lab guest holds the non-zero memory a scenario drew: the fill's sizing and the dirtier itself.

The sizing tests are pure. The dirtier tests build ``backends/lab/dirtier.c`` with gcc and run it
on this machine with its settings in a file instead of ``/proc/cmdline``; the corruption test
rewrites one tag in the running dirtier's memory through ``/proc/PID/mem`` (skipped where ptrace
is not allowed) and expects the ``NOVACRON-CORRUPT`` marker for exactly that page.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backends.lab.guest import DIRTIER_SOURCE, GuestSpec, lab_workload, resident_mib
from novacron.migration.guests import draw_guest_workload
from novacron.migration.protocol import MIB
from novacron.scenario import resolve_scenario

PAGE_BYTES = 4096
TAG_SALT = 0x9E3779B97F4A7C15
"""``dirtier.c``'s tag salt: page ``i`` of the region starts with ``i ^ TAG_SALT``."""


@pytest.mark.parametrize("wws_mib", [12.8, 20.0, 33.3, 51.2])
def test_the_fill_makes_the_guest_hold_the_drawn_nonzero_memory(wws_mib: float) -> None:
    drawn_nonzero_mib = 115.2
    workload = lab_workload(256, drawn_nonzero_mib, wws_mib, 1234.6)
    assert workload.fill_mib > 0 and workload.dirty_mib == int(wws_mib) and workload.dirty_rate_pages_s == 1235
    assert abs(workload.nonzero_mib - drawn_nonzero_mib) <= 0.5 and workload.excess_mib == 0.0
    planned = workload.as_workload()  # what the real runtime's planner and controller see
    assert abs((planned.resident_bytes + planned.wws_bytes) / MIB - drawn_nonzero_mib) <= 0.5
    assert planned.wws_bytes == workload.dirty_mib * MIB and planned.memory_bytes == 256 * MIB


def test_a_draw_below_the_kernel_floor_gets_no_fill_and_says_how_much_bigger_the_guest_is() -> None:
    floor_mib = resident_mib(256)
    workload = lab_workload(256, floor_mib + 10.0, 40.0, 500.0)
    assert workload.fill_mib == 0
    assert workload.nonzero_mib == pytest.approx(floor_mib + 40.0)
    assert workload.excess_mib == pytest.approx(30.0)


def test_lab_small_never_draws_less_non_zero_memory_than_its_real_guests_hold() -> None:
    """Every guest lab-small can draw fits above the kernel's floor, so both runtimes move the same bytes."""
    scenario, _ = resolve_scenario("lab-small")
    [memory_gib] = scenario.workload.vm_memory_gib
    rng = np.random.default_rng(0)
    for _ in range(2000):
        drawn = draw_guest_workload(rng, scenario.migration, int(memory_gib * 1024 * MIB))
        workload = lab_workload(round(memory_gib * 1024), (drawn.resident_bytes + drawn.wws_bytes) / MIB,
                                drawn.wws_bytes / MIB, drawn.dirty_rate_pages_s)
        assert workload.excess_mib <= 0.5, (drawn, workload)


def test_the_guest_kernel_command_line_carries_the_fill() -> None:
    cmdline = GuestSpec(name="g", dirty_mib=20, dirty_rate_pages_s=700, fill_mib=33).kernel_cmdline()
    assert "dirty_mib=20" in cmdline and "dirty_rate=700" in cmdline and "fill_mib=33" in cmdline


# -- the dirtier, run on this machine ------------------------------------------------------------

@pytest.fixture(scope="module")
def dirtier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    binary = tmp_path_factory.mktemp("dirtier") / "dirtier"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(binary), str(DIRTIER_SOURCE)], check=True, capture_output=True)
    return binary


@pytest.fixture
def running(dirtier: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    settings = tmp_path / "cmdline"
    settings.write_text("console=ttyS0 dirty_mib=2 dirty_rate=200 fill_mib=3\n")
    console = tmp_path / "console"
    with console.open("w") as out:
        process = subprocess.Popen([str(dirtier), str(settings)], stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        yield process, console
    finally:
        process.kill()
        process.wait()


def wait_for(console: Path, pattern: str, timeout_s: float = 10.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(pattern, console.read_text())
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} on the console within {timeout_s} s:\n{console.read_text()}")


def resident_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def region_address(pid: int, pages: int) -> int:
    """The address of the dirtier's region: page 0's tag, followed by page 1's one page later."""
    first, second = struct.pack("<Q", TAG_SALT), struct.pack("<Q", 1 ^ TAG_SALT)
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if not perms.startswith("rw") or end - start < pages * PAGE_BYTES:
                continue
            mem.seek(start)
            head = mem.read(2 * PAGE_BYTES)
            at = head.find(first)
            if 0 <= at < PAGE_BYTES and head[at + PAGE_BYTES: at + PAGE_BYTES + 8] == second:
                return start + at
    raise AssertionError("the dirtier's region is not in its memory map")


def test_the_dirtier_holds_its_fill_and_its_working_set(running: tuple[subprocess.Popen[str], Path]) -> None:
    process, console = running
    wait_for(console, r"NOVACRON-READY dirty_mib=2 dirty_rate=200 fill_mib=3")
    wait_for(console, r"NOVACRON-ALIVE seq=1 ")
    assert resident_kib(process.pid) >= 5 * 1024  # 3 MiB of fill and 2 MiB of working set, all resident


def test_a_corrupted_fill_page_is_reported_by_the_dirtier(running: tuple[subprocess.Popen[str], Path]) -> None:
    process, console = running
    wait_for(console, r"NOVACRON-ALIVE seq=0 ")
    fill_pages = 3 * MIB // PAGE_BYTES
    try:
        base = region_address(process.pid, fill_pages)
        page = fill_pages // 2  # a static page: the dirtier never writes it again, so only its check can see it
        with open(f"/proc/{process.pid}/mem", "r+b") as mem:
            mem.seek(base + page * PAGE_BYTES)
            mem.write(struct.pack("<Q", 0xBAD))
    except PermissionError:
        pytest.skip("ptrace access to the dirtier is not allowed here")
    found = wait_for(console, r"NOVACRON-CORRUPT page=(\d+) tag=(\w+)")
    assert int(found.group(1)) == page and found.group(2) == "bad"
    assert process.poll() is None  # it keeps running and reporting
