"""Run reports: the target table and plots, as Markdown and as one self-contained HTML page.

Plots are functions from a loaded run to a matplotlib figure (or ``None`` when the run has no
data for them). Each is saved as a PNG beside the report and embedded in the HTML as base64, so
the page can be mailed or attached to a CI job on its own.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from novacron.app.analysis import Run, load_run
from novacron.app.plots.cache import plot_cache_hit_rates
from novacron.app.plots.capacity import plot_availability, plot_host_spread
from novacron.app.plots.migration import plot_downtime_cdf
from novacron.app.plots.raft import plot_raft_timeline
from novacron.app.plots.scheduler import plot_placement_quality
from novacron.slo import format_measured, status_label

PlotFn = Callable[[Run], Figure | None]


def plot_utilisation(run: Run) -> Figure | None:
    df = run.of_type("ClusterUtilisationSampled")
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(df["t_s"] / 3600, df["cpu_pct"], label="CPU")
    ax.plot(df["t_s"] / 3600, df["memory_pct"], label="memory")
    ax.axhline(80, color="C0", ls=":", lw=1, label="CPU target 80 %")
    ax.axhline(85, color="C1", ls=":", lw=1, label="memory target 85 %")
    ax.set(xlabel="simulated time (h)", ylabel="cluster utilisation (%)", ylim=(0, 100),
           title="Cluster utilisation over time")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


PLOTS: dict[str, PlotFn] = {
    "utilisation": plot_utilisation,
    "placement_quality": plot_placement_quality,
    "availability": plot_availability,
    "host_spread": plot_host_spread,
    "cache_hit_rates": plot_cache_hit_rates,
    "migration_downtime_cdf": plot_downtime_cdf,
    "raft": plot_raft_timeline,
}


def _target_rows(run: Run) -> list[dict[str, object]]:
    return [row for row in run.summary.get("targets", []) if row["status"] != "not measured"]


def _markdown(run: Run, images: list[str]) -> str:
    s = run.summary
    lines = [f"# NovaCron run: {s['scenario']} (seed {s['seed']})", "",
             f"runtime `{s['runtime']}`, NovaCron {s['novacron_version']}, {s['events']} events, "
             f"event log sha256 `{s['events_sha256'][:16]}…`", "", "## Targets", "",
             "| target | threshold | measured | status |", "|---|---|---|---|"]
    for row in _target_rows(run):
        measured = format_measured(row["measured"], str(row["unit"]))  # type: ignore[arg-type]
        label = status_label(str(row["status"]), str(row["kind"]))
        lines.append(f"| {row['target']} | {row['threshold']} | {measured} | {label} |")
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def _html(run: Run, images: dict[str, bytes]) -> str:
    s = run.summary
    esc = html.escape
    rows = []
    for row in _target_rows(run):
        measured = esc(format_measured(row["measured"], str(row["unit"])))  # type: ignore[arg-type]
        css = "pass" if row["status"] == "pass" else ("ref" if row["kind"] == "reference" else "fail")
        label = status_label(str(row["status"]), str(row["kind"]))
        rows.append(f"<tr class='{css}'><td>{esc(str(row['target']))}</td><td>{esc(str(row['threshold']))}"
                    f"</td><td>{measured}</td><td>{esc(label)}</td></tr>")
    figures = "".join(
        f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        f"</figure>" for name, png in images.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>NovaCron run {esc(s['scenario'])} seed {s['seed']}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}}
tr.pass td:last-child{{color:#17692f}}tr.fail td:last-child{{color:#b00020;font-weight:bold}}
tr.ref td:last-child{{color:#8a6d00}}img{{max-width:100%}}</style></head>
<body><h1>NovaCron run: {esc(s['scenario'])}</h1>
<p>seed <b>{s['seed']}</b> · runtime {esc(s['runtime'])} · NovaCron {esc(s['novacron_version'])} ·
{s['events']} events · event log sha256 <code>{esc(s['events_sha256'])}</code></p>
<h2>Targets</h2><table><thead><tr><th>target</th><th>threshold</th><th>measured</th><th>status</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table><h2>Plots</h2>{figures}</body></html>
"""


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.html`` and one PNG per plot; return the HTML path."""
    run = load_run(run_dir)
    images: dict[str, bytes] = {}
    for name, plot in PLOTS.items():
        fig = plot(run)
        if fig is None:
            continue
        png_path = run.path / f"{name}.png"
        fig.savefig(png_path, dpi=110)
        plt.close(fig)
        images[png_path.name] = png_path.read_bytes()
    (run.path / "report.md").write_text(_markdown(run, list(images)))
    html_path = run.path / "report.html"
    html_path.write_text(_html(run, images))
    return html_path
