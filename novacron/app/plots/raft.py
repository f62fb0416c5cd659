"""The Raft report plot: who led in which term, and the faults that made it change."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from novacron.app.analysis import Run


def plot_raft_timeline(run: Run) -> Figure | None:
    elected = run.of_type("LeaderElected")
    if elected.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.step(elected["t_s"], elected["manager_id"], where="post", color="C0", lw=1.5, label="leader")
    ax.scatter(elected["t_s"], elected["manager_id"], color="C0", s=14, zorder=3)
    crashed = run.of_type("ManagerCrashed")
    for t in crashed["t_s"] if not crashed.empty else []:
        ax.axvline(t, color="C3", ls="--", lw=1)
    parted, healed = run.of_type("NetworkPartitioned"), run.of_type("NetworkHealed")
    if not parted.empty:
        ends = list(healed["t_s"]) if not healed.empty else []
        for i, start in enumerate(parted["t_s"]):
            end = ends[i] if i < len(ends) else float(elected["t_s"].max())
            ax.axvspan(start, end, color="C1", alpha=0.2, lw=0)
    ax.set(xlabel="simulated time (s)", ylabel="leader (manager id)",
           title="Raft leadership (dashed: manager crash, shaded: partition)")
    last_s = max(float(df["t_s"].max()) for df in (elected, crashed, parted, healed, run.of_type("ManagerStarted"),
                                                   run.of_type("PartitionRecovered")) if not df.empty)
    ax.set_xlim(0, max(last_s * 1.1, 1.0))
    fig.tight_layout()
    return fig
