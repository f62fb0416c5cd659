"""`novacron check` fails on a missed target; the HTML report renders in headless Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from novacron.app.cli import main
from tests.unavailable import require_binary

OVERLOADED = """
name = "overloaded"
duration_s = 1800.0
[cluster]
hosts = 2
host_cpu_cores = 16
cpu_overcommit = 4.0
[workload]
vms = 40
vm_cpu_cores = [4]
vm_memory_gib = [4.0]
arrival_window_s = 60.0
mean_cpu_utilisation = 0.9
"""


def test_check_fails_listing_the_missed_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "overloaded.toml"
    scenario.write_text(OVERLOADED)
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "required target(s) not met" in err
    assert re.search(r"peak CPU utilisation \(cluster.peak_cpu_pct\): measured [\d.]+ %, needs < 80 %", err)


def test_check_passes_on_the_default_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "all required targets met" in capsys.readouterr().out


def chromium() -> str:
    return require_binary("chromium", "chromium-browser",
                          missing="headless Chromium (Debian package 'chromium') is not installed")


def render(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """Load a page in headless Chromium; return its DOM and every console message it logged."""
    profile = tmp_path / f"profile-{page.stem}"
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def test_console_checker_sees_a_page_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>")
    _, console = render(page, tmp_path)
    assert any("notDefined" in line for line in console)


def test_html_report_renders_without_console_errors(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", "--out", str(run_dir), "--no-progress"]) == 0
    dom, console = render(run_dir / "report.html", tmp_path)
    assert console == []
    assert "<table>" in dom and "peak CPU utilisation" in dom
    images = re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom)
    assert len(images) >= 1
