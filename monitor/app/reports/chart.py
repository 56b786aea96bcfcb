"""The volume and negative-share chart, drawn with matplotlib (Agg, no pyplot state) as SVG.

Labels on the chart are ASCII on purpose: matplotlib measures text with its
own fonts, and a fresh machine has no CJK font (installing one needs root and
a system package). With ``svg.fonttype = none`` text stays ``<text>`` that the
browser draws; the Chinese captions live in the surrounding HTML / Markdown.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from monitor.app.reports.model import Marker, Series

VOLUME, NEGATIVE, SHARE = "#cbd5e1", "#f87171", "#b91c1c"
MIN_SHARE_COUNT = 3  # buckets with fewer mentions get no point on the share line
MARKER_COLOURS = {"opened": "#dc2626", "escalated": "#9333ea", "acked": "#d97706", "resolved": "#16a34a"}


def step_label(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d" if minutes > 1440 else "day"
    if minutes % 60 == 0:
        return f"{minutes // 60} h" if minutes > 60 else "hour"
    return f"{minutes} min"


def volume_chart(series: Series, markers: Sequence[Marker] = (), *, tz: str) -> str:
    """An inline-ready ``<svg>``: bars of all / negative mentions per bucket, the negative share as a line.

    The share line has the SVG id ``negative-share`` (its path has one vertex
    per bucket with at least MIN_SHARE_COUNT mentions, joined across the others); markers are ``marker-<label>`` vertical lines.
    """
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    zone = ZoneInfo(tz)
    style = {"svg.fonttype": "none", "svg.hashsalt": "yuqing-report", "font.size": 9,
             "font.family": "sans-serif", "axes.spines.top": False}
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(9.6, 3.4), layout="constrained")
        ax = fig.add_subplot()
        width = series.step / timedelta(days=1)
        left = [mdates.date2num(t) for t in series.times]
        ax.bar(left, series.totals, width=width, align="edge", color=VOLUME, label="all mentions", linewidth=0)
        ax.bar(left, series.negatives, width=width, align="edge", color=NEGATIVE, label="negative", linewidth=0)
        ax.set_ylim(0, max(max(series.totals, default=0), 1) * 1.15)
        ax.set_ylabel(f"mentions per {step_label(series.step)}")
        ax.set_xlim(left[0], left[-1] + width)
        share_ax = ax.twinx()
        # a share of one or two mentions is noise (0 % / 100 %): the line joins the buckets with enough
        points = [(x + width / 2, 100 * n / t) for x, n, t in zip(left, series.negatives, series.totals)
                  if t >= MIN_SHARE_COUNT]
        share_ax.plot([p[0] for p in points], [p[1] for p in points], color=SHARE, linewidth=1.6,
                      marker="o" if len(points) <= 60 else None, markersize=2.5,
                      label="negative share (%)", gid="negative-share")
        share_ax.set_ylim(0, 105)
        share_ax.set_ylabel("negative share (%)")
        share_ax.spines["top"].set_visible(False)
        span = left[-1] + width - left[0]
        last_x, level = None, 0
        for m in sorted(markers, key=lambda m: m.at):
            x = mdates.date2num(m.at)
            colour = MARKER_COLOURS.get(m.label, "#475569")
            ax.axvline(x, color=colour, linestyle="--", linewidth=1, gid=f"marker-{m.label}")
            # labels of markers close together are stacked, not drawn over each other
            level = level + 1 if last_x is not None and (x - last_x) / span < 0.12 else 0
            last_x = x
            right = (x - left[0]) / span > 0.8  # near the right edge: label on the left of the line
            ax.annotate(f"{m.label} {m.at.astimezone(zone):%H:%M}", (x, 1), xycoords=("data", "axes fraction"),
                        xytext=(-3 if right else 3, -2 - 11 * (level % 4)), textcoords="offset points",
                        ha="right" if right else "left", va="top", fontsize=8, color=colour,
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                        gid=f"label-{m.label}")
        locator = mdates.AutoDateLocator(tz=zone, minticks=4, maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
        handles = ax.get_legend_handles_labels()[0] + share_ax.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper left", bbox_to_anchor=(0, -0.12),
                  ncols=3, frameon=False, fontsize=8)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]
