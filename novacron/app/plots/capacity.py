"""Report plots of the capacity model: availability over time, and per-host utilisation spread."""

from __future__ import annotations

import matplotlib.pyplot as plt
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
    samples = run.of_type("HostUtilisationSampled")
    if samples.empty:
        return None
    by_time = samples.groupby("t_s")["cpu_pct"]
    median, p99 = by_time.quantile(0.5), by_time.quantile(0.99)
    hours = median.index / 3600
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(hours, median, label="median host")
    ax.plot(hours, p99, label="p99 host")
    ax.plot(hours, by_time.max(), label="busiest host", lw=0.8)
    draw_target(ax, "cluster.peak_cpu_pct", "CPU", "grey")
    ax.set(xlabel="simulated time (h)", ylabel="host CPU (%)", title="Per-host CPU utilisation")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
