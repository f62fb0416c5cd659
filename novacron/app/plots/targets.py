"""Target lines on plots, at the thresholds the SLO catalogue owns (not numbers copied here)."""

from __future__ import annotations

from matplotlib.axes import Axes

from novacron.slo import CATALOGUE


def draw_target(ax: Axes, metric: str, label: str, color: str) -> None:
    """A dotted line at the catalogue's threshold for ``metric``, labelled ``<label> target <N> %``."""
    threshold = next(t.threshold for t in CATALOGUE if t.metric == metric)
    if not isinstance(threshold, float):
        raise ValueError(f"{metric}: a target line needs a single threshold, got {threshold!r}")
    ax.axhline(threshold, color=color, ls=":", lw=1, label=f"{label} target {threshold:g} %")
