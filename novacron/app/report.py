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
from novacron.app.plots.targets import draw_target
from novacron.edge.metrics import run_service_table
from novacron.federation.metrics import datacenter_table
from novacron.slo import RunVerdict, TargetResult, admission_line, format_measured
from novacron.storage.metrics import replication_table

PlotFn = Callable[[Run], Figure | None]


def plot_utilisation(run: Run) -> Figure | None:
    df = run.of_type("ClusterUtilisationSampled")
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(df["t_s"] / 3600, df["cpu_pct"], label="CPU served")
    ax.plot(df["t_s"] / 3600, df["memory_pct"], label="memory")
    top = 100.0
    if "cpu_demand_pct" in df and (df["cpu_demand_pct"] > df["cpu_pct"] + 1e-9).any():
        # Contention: the demand no host could serve would hide above a 0-100 % axis.
        ax.plot(df["t_s"] / 3600, df["cpu_demand_pct"], color="C3", ls="--", lw=1, label="CPU demand")
        top = max(top, 1.05 * float(df["cpu_demand_pct"].max()))
    draw_target(ax, "cluster.peak_cpu_pct", "CPU", "C0")
    draw_target(ax, "cluster.peak_memory_pct", "memory", "C1")
    ax.set(xlabel="simulated time (h)", ylabel="cluster utilisation (%)", ylim=(0, top),
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


def _header(run: Run) -> str:
    s = run.summary
    return (f"runtime `{s['runtime']}`, NovaCron {s['novacron_version']}, {s['events']} events, "
            f"event log sha256 `{s['events_sha256'][:16]}…`")


def _md_rows(results: list[TargetResult]) -> list[str]:
    return [f"| {r.target.name} | {r.target.describe_threshold()} | {format_measured(r.measured, r.target.unit)} "
            f"| {r.label} |" for r in results]


def _markdown(run: Run, images: list[str]) -> str:
    s, verdict = run.summary, run.verdict
    lines = [f"# NovaCron run: {s['scenario']} (seed {s['seed']})", "", _header(run), "",
             admission_line(run.metrics) or "VMs: none requested", "",
             f"**Verdict: {_verdict_text(verdict)}**", "", "## Targets", "",
             "| target | threshold | measured | verdict |", "|---|---|---|---|", *_md_rows(verdict.required)]
    if verdict.references:
        lines += ["", "## Reference figures (never decide the verdict)", "",
                  "| figure | analysis | measured | |", "|---|---|---|---|", *_md_rows(verdict.references)]
    if verdict.settings:
        lines += ["", "## Settings", ""] + [f"- {st.name}: {format_measured(v, st.unit)}" for st, v in verdict.settings]
    datacenters = datacenter_table(run.metrics)
    if datacenters:
        lines += ["", "## Datacenters", "", "```", datacenters, "```"]
    replication = replication_table(run.metrics)
    if replication:
        lines += ["", "## Cross-datacenter replication", "", "```", replication, "```"]
    edge = run_service_table(run.metrics, verdict)
    if edge:
        lines += ["", "## Edge services", "", "```", edge, "```"]
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def _verdict_text(verdict: RunVerdict) -> str:
    if verdict.passed():
        return "pass: every required target met"
    parts = []
    if verdict.failed:
        parts.append(f"{len(verdict.failed)} failed")
    if verdict.not_measured:
        parts.append(f"{len(verdict.not_measured)} not measured")
    return "fail: " + ", ".join(parts)


def _html_rows(results: list[TargetResult]) -> str:
    esc = html.escape
    rows = []
    for r in results:
        css = "ref" if not r.counts else {"pass": "pass", "fail": "fail", "not measured": "fail"}[r.verdict.value]
        rows.append(f"<tr class='{css}'><td>{esc(r.target.name)}</td><td>{esc(r.target.describe_threshold())}"
                    f"</td><td>{esc(format_measured(r.measured, r.target.unit))}</td><td>{esc(r.label)}</td></tr>")
    return "".join(rows)


def _html(run: Run, images: dict[str, bytes]) -> str:
    s, verdict = run.summary, run.verdict
    esc = html.escape
    head = "<thead><tr><th>{}</th><th>{}</th><th>measured</th><th>verdict</th></tr></thead>"
    references = "" if not verdict.references else (
        "<h2>Reference figures</h2><p>The analysis' observed figures, shown for comparison; they never decide "
        f"the verdict.</p><table>{head.format('figure', 'analysis')}<tbody>{_html_rows(verdict.references)}"
        "</tbody></table>")
    settings = "" if not verdict.settings else "<h2>Settings</h2><ul>" + "".join(
        f"<li>{esc(st.name)}: {esc(format_measured(v, st.unit))}</li>" for st, v in verdict.settings) + "</ul>"
    datacenters = datacenter_table(run.metrics)
    if datacenters:
        settings += f"<h2>Datacenters</h2><pre>{esc(datacenters)}</pre>"
    replication = replication_table(run.metrics)
    if replication:
        settings += f"<h2>Cross-datacenter replication</h2><pre>{esc(replication)}</pre>"
    edge = run_service_table(run.metrics, verdict)
    if edge:
        settings += f"<h2>Edge services</h2><pre>{esc(edge)}</pre>"
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
<p>{esc(admission_line(run.metrics) or "VMs: none requested")}</p>
<p><b>Verdict: {esc(_verdict_text(verdict))}</b></p>
<h2>Targets</h2><table>{head.format('target', 'threshold')}
<tbody>{_html_rows(verdict.required)}</tbody></table>{references}{settings}<h2>Plots</h2>{figures}</body></html>
"""


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.html`` and one PNG per plot; return the HTML path.

    Raises ``RunNotFound`` (one line) when the directory is not a readable run directory.
    """
    run = load_run(run_dir, check_events=True)
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
