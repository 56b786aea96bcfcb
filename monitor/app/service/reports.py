"""复盘 reports written to a file: one incident's review, a day's or a period's summary.

``out`` names the format (``.html``, or ``.md`` with the chart beside it as ``.svg``); days are in the
config's timezone. ``track`` is a progress callback from :func:`monitor.app.reports.progress_bar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.app.reports import build_incident_report, build_summary, report_format, write_report
from monitor.app.reports.scan import Track, no_progress
from monitor.app.service.context import Context, day, duration, today


@dataclass(frozen=True)
class Written:
    report: Any  # IncidentReport or SummaryReport
    files: list[Path]  # the report, and for Markdown its chart


def incident(ctx: Context, incident_id: int, out: Path, *, now: datetime, before: str = "2h", after: str = "1h",
             top: int = 10, track: Track = no_progress) -> Written:
    """The review of one incident: timeline, TTA/TTR, volume chart from ``before`` the incident opened to
    ``after`` its last activity, top negatives, plan steps."""
    report_format(out)  # fail on a bad --out before any work
    spans = duration(before, "--before"), duration(after, "--after")
    report = build_incident_report(ctx.db, incident_id, tz=ctx.tz, now=now, before=spans[0], after=spans[1],
                                   top=top, track=track)
    return Written(report, write_report(report, out))


def daily(ctx: Context, out: Path, *, now: datetime, on: str | None = None, days: int = 1, top: int = 10,
          track: Track = no_progress) -> Written:
    """The day ``on`` (YYYY-MM-DD, default today), or the ``days`` days ending on it."""
    last = day(on, "--date") if on else today(ctx.tz, now)
    return summary(ctx, last - timedelta(days=days - 1), last, out, now=now, top=top, track=track)


def period(ctx: Context, out: Path, *, now: datetime, since: str, until: str | None = None, top: int = 10,
           track: Track = no_progress) -> Written:
    """The days from ``since`` to ``until`` inclusive (YYYY-MM-DD; ``until`` default today)."""
    last = day(until, "--until") if until else today(ctx.tz, now)
    return summary(ctx, day(since, "--since"), last, out, now=now, top=top, track=track)


def summary(ctx: Context, first: date, last: date, out: Path, *, now: datetime, top: int = 10,
            track: Track = no_progress) -> Written:
    report_format(out)
    report = build_summary(ctx.db, first, last, tz=ctx.tz, now=now, topics=[t.name for t in ctx.config.topics],
                           top=top, track=track)
    return Written(report, write_report(report, out))
