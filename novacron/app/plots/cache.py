"""The cache's report plot: hit rate per tier and overall, per statistics interval."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from novacron.app.analysis import Run
from novacron.app.plots.targets import draw_target


def plot_cache_hit_rates(run: Run) -> Figure | None:
    df = run.of_type("CacheStatsSampled")
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for tier, rows in df.groupby("cache_tier", sort=True):
        requests = rows["cache_hits"] + rows["cache_misses"]
        rate = 100.0 * rows["cache_hits"] / requests.where(requests > 0)
        ax.plot(rows["t_s"] / 60, rate, marker=".", label=str(tier), lw=2 if tier == "overall" else 1)
    draw_target(ax, "cache.overall.hit_rate_pct", "overall", "k")
    ax.set(xlabel="simulated time (min)", ylabel="hit rate (%)", ylim=(0, 100.5),
           title="Cache hit rate per tier (hits / requests reaching the tier)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
