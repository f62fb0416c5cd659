"""Report plots for migrations: downtime CDF by type, against the targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from novacron.app.analysis import Run

TARGET_MS = {"live": 5_000.0, "warm": 30_000.0}


def plot_downtime_cdf(run: Run) -> Figure | None:
    import matplotlib.pyplot as plt

    df = run.of_type("MigrationFinished")
    if df.empty:
        return None
    done = df[df["outcome"] == "completed"]
    if done.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for kind, group in done.groupby("migration_type"):
        values = np.sort(np.maximum(group["downtime_ms"].to_numpy(dtype=float), 0.1))
        fraction = np.arange(1, len(values) + 1) / len(values)
        ax.step(np.r_[values[0], values], np.r_[0.0, fraction], where="post", marker=".", markersize=3,
                label=f"{kind} (n={len(values)})")
    for kind, limit in TARGET_MS.items():
        ax.axvline(limit, ls=":", lw=1, color="grey")
        ax.text(limit, 0.02, f" {kind} target", rotation=90, fontsize=7, color="grey", va="bottom")
    ax.set(xscale="log", xlabel="downtime (ms, log scale)", ylabel="fraction of migrations", ylim=(0, 1.02),
           title="Migration downtime by type (completed migrations)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
