"""Report plots of the capacity model: availability over time, and per-host utilisation spread."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from novacron.app.analysis import Run
from novacron.app.plots.targets import draw_target


def plot_availability(run: Run) -> Figure | None:
    """Hosts up and VMs running over time, with every host failure marked."""
    samples = run.of_type("ClusterUtilisationSampled")
    if samples.empty or "hosts_up" not in samples:
        return None
    failures = run.of_type("HostFailed")
    fig, hosts_ax = plt.subplots(figsize=(7, 3.2))
    hours = samples["t_s"] / 3600
    hosts_ax.step(hours, samples["hosts_up"], where="post", color="C0", label="hosts up")
    hosts_ax.set(xlabel="simulated time (h)", ylabel="hosts up", title="Availability")
    vms_ax = hosts_ax.twinx()
    vms_ax.plot(hours, samples["vms_running"], color="C2", label="VMs running")
    vms_ax.set_ylabel("VMs running")
    for t_s in failures.get("t_s", []):
        hosts_ax.axvline(t_s / 3600, color="C3", lw=0.6, alpha=0.5)
    uptime = run.metrics.get("cluster.uptime_pct")
    if uptime is not None:
        hosts_ax.text(0.01, 0.04, f"uptime {uptime:.4f} %  ·  {len(failures)} host failures (red)",
                      transform=hosts_ax.transAxes, fontsize=8)
    fig.tight_layout()
    return fig


def plot_host_spread(run: Run) -> Figure | None:
    """Per-host CPU utilisation at each update: median, p99 and max against the CPU target."""
    spread = host_cpu_spread(run)
    if spread.empty:
        return None
    hours = spread.index / 3600
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(hours, spread["median"], label="median host")
    ax.plot(hours, spread["p99"], label="p99 host")
    ax.plot(hours, spread["max"], label="busiest host", lw=0.8)
    draw_target(ax, "cluster.peak_cpu_pct", "CPU", "grey")
    ax.set(xlabel="simulated time (h)", ylabel="host CPU (%)", title="Per-host CPU utilisation")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def host_cpu_spread(run: Run) -> pd.DataFrame:
    """Median, p99 and max of the per-host CPU samples at each sample time, read one record batch
    at a time (a month of a thousand hosts is millions of samples): the rows of the last time in a
    batch wait for the next batch, since the log is in time order."""
    parts: list[pd.DataFrame] = []
    pending = pd.DataFrame(columns=["t_s", "cpu_pct"])
    for batch in run.scan("HostUtilisationSampled", ["t_s", "cpu_pct"]):
        rows = pd.concat([pending, batch], ignore_index=True) if len(pending) else batch
        last = rows["t_s"].iloc[-1]
        done, pending = rows[rows["t_s"] != last], rows[rows["t_s"] == last]
        if len(done):
            parts.append(_spread(done))
    if len(pending):
        parts.append(_spread(pending))
    return pd.concat(parts) if parts else pd.DataFrame(columns=["median", "p99", "max"])


def _spread(rows: pd.DataFrame) -> pd.DataFrame:
    by_time = rows.groupby("t_s")["cpu_pct"]
    return pd.DataFrame({"median": by_time.quantile(0.5), "p99": by_time.quantile(0.99), "max": by_time.max()})
