"""The machine's load average as real measurements report it beside their wall-clock numbers."""

from __future__ import annotations

import os


def load_average_text() -> str:
    """The 1-, 5- and 15-minute load averages, two decimals each: ``"0.52 0.61 0.70"``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
