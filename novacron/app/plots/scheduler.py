"""Report plot: placement quality over a run (hosts used against the bound, imbalance, moves)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from novacron.app.analysis import Run


def plot_placement_quality(run: Run) -> Figure | None:
    quality = run.of_type("PlacementQualitySampled")
    if quality.empty:
        return None
    hours = quality["t_s"] / 3600
    fig, (hosts_ax, balance_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    hosts_ax.step(hours, quality["hosts_used"], where="post", label="hosts used")
    hosts_ax.step(hours, quality["hosts_lower_bound"], where="post", ls="--", label="lower bound")
    hosts_ax.set(xlabel="simulated time (h)", ylabel="hosts", title="Hosts used vs lower bound")
    hosts_ax.set_ylim(bottom=0)
    hosts_ax.legend(fontsize=8)
    balance_ax.plot(hours, quality["imbalance_pct"], label="imbalance (std-dev of host load, pp)")
    balance_ax.plot(hours, quality["fragmentation_pct"], label="fragmentation (%)")
    moves = run.of_type("RebalanceMoveStarted")
    if not moves.empty:
        balance_ax.hist(moves["t_s"] / 3600, bins=24, alpha=0.3, label="moves started (count)")
    balance_ax.set(xlabel="simulated time (h)", title="Balance and fragmentation")
    balance_ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
