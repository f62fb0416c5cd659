"""Raft timing, real managers against the simulation, per network profile (issue 15 item 6).

The comparison is ``novacron calibrate-raft`` (``backends.manager.calibrate_raft``); this module keeps
the command the results in RESULTS_managers.md were written with. Run as root::

    .venv/bin/python -m benchmarks.raft_timing_real_vs_sim --profiles lan,wan30,wan80,wan150,wan30/loss=0.02 \
        --election-trials 100 --formation-trials 30 --partition-trials 100

which is ``novacron calibrate-raft`` with the same flags (its ``--out`` defaults to
``runs/calibrate-raft``).
"""

from __future__ import annotations

import sys

from backends.manager.calibrate_raft import ks_distance, row
from novacron.app.cli import main as cli_main

__all__ = ["ks_distance", "main", "row"]


def main(argv: list[str] | None = None) -> int:
    return cli_main(["calibrate-raft", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
