"""复盘 reports: one incident's review, a day's or a period's summary — written to a file, or as text.

``out`` names the format (``.html``, or ``.md`` with the chart beside it as ``.svg``); days are in the
config's timezone. ``track`` is a progress callback from :func:`monitor.app.reports.progress_bar`.
A front end that serves reports (the web console) builds one (``incident_report`` …) and asks for
its :func:`document` in a format: the file's text, named for a download.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.app.reports import (IncidentReport, SummaryReport, build_incident_report, build_summary, report_format,
                                 write_report)
from monitor.app.reports.render import chart_for, render, render_body
from monitor.app.reports.scan import Track, no_progress
from monitor.app.service.context import Context, day, duration, today
from monitor.core.errors import UsageError

# What document() makes: the HTML file (chart inline), Markdown (chart referenced as <name>.svg), the
# chart alone, and the HTML body to show inside another page.
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8",
               "svg": "image/svg+xml", "body": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Written:
    report: Any  # IncidentReport or SummaryReport
    files: list[Path]  # the report, and for Markdown its chart


@dataclass(frozen=True)
class Document:
    report: IncidentReport | SummaryReport
    text: str
    filename: str  # incident-3.html, daily-2026-03-15.md, report-2026-03-01_2026-03-15.svg …
    media_type: str


def incident_report(ctx: Context, incident_id: int, *, now: datetime, before: str = "2h", after: str = "1h",
                    top: int = 10, track: Track = no_progress) -> IncidentReport:
    """The review of one incident: timeline, TTA/TTR, volume chart from ``before`` the incident opened to
    ``after`` its last activity, top negatives, plan steps."""
    spans = duration(before, "--before"), duration(after, "--after")
    return build_incident_report(ctx.db, incident_id, tz=ctx.tz, now=now, before=spans[0], after=spans[1],
                                 top=top, track=track)


def daily_report(ctx: Context, *, now: datetime, on: str | None = None, days: int = 1, top: int = 10,
                 track: Track = no_progress) -> SummaryReport:
    """The day ``on`` (YYYY-MM-DD, default today), or the ``days`` days ending on it."""
    last = day(on, "--date") if on else today(ctx.tz, now)
    return summary_report(ctx, last - timedelta(days=days - 1), last, now=now, top=top, track=track)


def period_report(ctx: Context, *, now: datetime, since: str, until: str | None = None, top: int = 10,
                  track: Track = no_progress) -> SummaryReport:
    """The days from ``since`` to ``until`` inclusive (YYYY-MM-DD; ``until`` default today)."""
    last = day(until, "--until") if until else today(ctx.tz, now)
    return summary_report(ctx, day(since, "--since"), last, now=now, top=top, track=track)


def summary_report(ctx: Context, first: date, last: date, *, now: datetime, top: int = 10,
                   track: Track = no_progress) -> SummaryReport:
    return build_summary(ctx.db, first, last, tz=ctx.tz, now=now, topics=[t.name for t in ctx.config.topics],
                         top=top, track=track)


def document(report: IncidentReport | SummaryReport, fmt: str) -> Document:
    """The report as ``fmt``: ``html``, ``md``, ``svg`` (its chart) or ``body`` (see MEDIA_TYPES)."""
    if fmt not in MEDIA_TYPES:
        raise UsageError(f"format: expected one of {', '.join(MEDIA_TYPES)}, got {fmt!r}")
    stem = name_of(report)
    if fmt == "body":
        text = render_body(report)
    elif fmt == "svg":
        text = chart_for(report)
    else:
        text = render(report, fmt, chart_for(report) if fmt == "html" else f"{stem}.svg")
    return Document(report, text, f"{stem}.{'html' if fmt == 'body' else fmt}", MEDIA_TYPES[fmt])


def name_of(report: IncidentReport | SummaryReport) -> str:
    if isinstance(report, IncidentReport):
        return f"incident-{report.incident.id}"
    if report.kind == "daily":
        return f"daily-{report.first_day}"
    return f"report-{report.first_day}_{report.last_day}"


# -- files (monitor report …) -----------------------------------------------------------------------
def incident(ctx: Context, incident_id: int, out: Path, *, now: datetime, before: str = "2h", after: str = "1h",
             top: int = 10, track: Track = no_progress) -> Written:
    report_format(out)  # fail on a bad --out before any work
    report = incident_report(ctx, incident_id, now=now, before=before, after=after, top=top, track=track)
    return Written(report, write_report(report, out))


def daily(ctx: Context, out: Path, *, now: datetime, on: str | None = None, days: int = 1, top: int = 10,
          track: Track = no_progress) -> Written:
    report_format(out)
    report = daily_report(ctx, now=now, on=on, days=days, top=top, track=track)
    return Written(report, write_report(report, out))


def period(ctx: Context, out: Path, *, now: datetime, since: str, until: str | None = None, top: int = 10,
           track: Track = no_progress) -> Written:
    report_format(out)
    report = period_report(ctx, now=now, since=since, until=until, top=top, track=track)
    return Written(report, write_report(report, out))


def summary(ctx: Context, first: date, last: date, out: Path, *, now: datetime, top: int = 10,
            track: Track = no_progress) -> Written:
    report_format(out)
    report = summary_report(ctx, first, last, now=now, top=top, track=track)
    return Written(report, write_report(report, out))
