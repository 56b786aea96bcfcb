"""`monitor report incident|daily|period`: 复盘 reports as HTML or Markdown files.

Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import typer

from monitor.cli.main import ConfigOpt, _config, _db, _now, app, cli_errors, err
from monitor.core.configtypes import parse_duration
from monitor.core.errors import UsageError

report_app = typer.Typer(help="复盘 reports: one incident, a day, a period — as .html or .md.", no_args_is_help=True)
app.add_typer(report_app, name="report")

OutOpt = typer.Option(..., "--out", "-o", help="Where to write: FILE.html (chart inline) or FILE.md (chart as FILE.svg).")
TopOpt = typer.Option(10, "--top", min=1, max=100, help="How many negative mentions and authors to list.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _duration(value: str, option: str) -> timedelta:
    try:
        return parse_duration(value)
    except Exception:
        raise UsageError(f'{option}: expected a duration like "2h", got {value!r}') from None


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: expected a date like 2026-03-15, got {value!r}") from None


def _today(tz: str) -> date:
    return _now().astimezone(ZoneInfo(tz)).date()


def _done(files: list[Path], what: str) -> None:
    typer.echo(f"wrote {' and '.join(str(f) for f in files)} — {what}")


@report_app.command("incident")
@cli_errors
def report_incident(incident_id: int, out: Path = OutOpt, config: Optional[Path] = ConfigOpt,
                    before: str = typer.Option("2h", "--before", help="Chart from this long before the incident opened."),
                    after: str = typer.Option("1h", "--after", help="… until this long after its last activity."),
                    top: int = TopOpt, quiet: bool = QuietOpt) -> None:
    """The review of one incident: timeline, TTA/TTR, volume chart, top negatives, plan steps."""
    from monitor.app.reports import build_incident_report, progress_bar, report_format, write_report

    report_format(out)  # fail on a bad --out before any work
    spans = _duration(before, "--before"), _duration(after, "--after")
    cfg = _config(config)
    db = _db(config)
    with progress_bar(err, quiet=quiet) as track:
        report = build_incident_report(db, incident_id, tz=cfg.timezone, now=_now(), before=spans[0],
                                       after=spans[1], top=top, track=track)
    files = write_report(report, out)
    _done(files, f"incident #{incident_id}, {len(report.timeline)} timeline entries, "
                 f"{report.total} mentions ({report.negative} negative)")


@report_app.command("daily")
@cli_errors
def report_daily(out: Path = OutOpt, config: Optional[Path] = ConfigOpt,
                 day: Optional[str] = typer.Option(None, "--date", help="YYYY-MM-DD in the config timezone (default: today)."),
                 days: int = typer.Option(1, "--days", min=1, max=366,
                                          help="Cover this many days ending on --date (a period summary)."),
                 top: int = TopOpt, quiet: bool = QuietOpt) -> None:
    """A day's report: incidents with MTTA/MTTR, volume and negative share per topic, top negatives."""
    cfg = _config(config)
    last = _day(day, "--date") if day else _today(cfg.timezone)
    _summary(config, cfg, last - timedelta(days=days - 1), last, out, top, quiet)


@report_app.command("period")
@cli_errors
def report_period(out: Path = OutOpt, config: Optional[Path] = ConfigOpt,
                  since: str = typer.Option(..., "--since", help="First day, YYYY-MM-DD."),
                  until: Optional[str] = typer.Option(None, "--until", help="Last day, inclusive (default: today)."),
                  top: int = TopOpt, quiet: bool = QuietOpt) -> None:
    """A period's summary: MTTA/MTTR overall, per severity and per day; volume per topic and per day."""
    cfg = _config(config)
    last = _day(until, "--until") if until else _today(cfg.timezone)
    _summary(config, cfg, _day(since, "--since"), last, out, top, quiet)


def _summary(config: Optional[Path], cfg, first: date, last: date, out: Path, top: int, quiet: bool) -> None:
    from monitor.app.reports import build_summary, progress_bar, report_format, write_report

    report_format(out)
    db = _db(config)
    with progress_bar(err, quiet=quiet) as track:
        report = build_summary(db, first, last, tz=cfg.timezone, now=_now(), topics=[t.name for t in cfg.topics],
                               top=top, track=track)
    files = write_report(report, out)
    _done(files, f"{len(report.days)} day(s), {len(report.incidents)} incidents, {report.total} mentions "
                 f"({report.negative} negative)")
