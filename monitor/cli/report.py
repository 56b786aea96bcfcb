"""`monitor report incident|daily|period`: 复盘 reports as HTML or Markdown files.

Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from contextlib import contextmanager
from typing import Iterator

import typer

from monitor.cli.main import ConfigOpt, _ctx, _now, app, cli_errors, err

report_app = typer.Typer(help="复盘 reports: one incident, a day, a period — as .html or .md.", no_args_is_help=True)
app.add_typer(report_app, name="report")

OutOpt = typer.Option(..., "--out", "-o", help="Where to write: FILE.html (chart inline) or FILE.md (chart as FILE.svg).")
TopOpt = typer.Option(10, "--top", min=1, max=100, help="How many negative mentions and authors to list.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar.")


@contextmanager
def _reporting(quiet: bool) -> Iterator[tuple]:
    """The reports service (charts, templates: loaded for these commands only) and a progress bar's ``track``."""
    from monitor.app.reports import progress_bar
    from monitor.app.service import reports

    with progress_bar(err.get(), quiet=quiet) as track:
        yield reports, track


def _done(files: list[Path], what: str) -> None:
    typer.echo(f"wrote {' and '.join(str(f) for f in files)} — {what}")


@report_app.command("incident")
@cli_errors
def report_incident(incident_id: int, out: Path = OutOpt, config: Optional[Path] = ConfigOpt,
                    before: str = typer.Option("2h", "--before", help="Chart from this long before the incident opened."),
                    after: str = typer.Option("1h", "--after", help="… until this long after its last activity."),
                    top: int = TopOpt, quiet: bool = QuietOpt) -> None:
    """The review of one incident: timeline, TTA/TTR, volume chart, top negatives, plan steps."""
    with _reporting(quiet) as (service, track):
        written = service.incident(_ctx(config), incident_id, out, now=_now(), before=before, after=after, top=top,
                                   track=track)
    report = written.report
    _done(written.files, f"incident #{incident_id}, {len(report.timeline)} timeline entries, "
                         f"{report.total} mentions ({report.negative} negative)")


@report_app.command("daily")
@cli_errors
def report_daily(out: Path = OutOpt, config: Optional[Path] = ConfigOpt,
                 day: Optional[str] = typer.Option(None, "--date", help="YYYY-MM-DD in the config timezone (default: today)."),
                 days: int = typer.Option(1, "--days", min=1, max=366,
                                          help="Cover this many days ending on --date (a period summary)."),
                 top: int = TopOpt, quiet: bool = QuietOpt) -> None:
    """A day's report: incidents with MTTA/MTTR, volume and negative share per topic, top negatives."""
    with _reporting(quiet) as (service, track):
        written = service.daily(_ctx(config), out, now=_now(), on=day, days=days, top=top, track=track)
    _summary_done(written)


@report_app.command("period")
@cli_errors
def report_period(out: Path = OutOpt, config: Optional[Path] = ConfigOpt,
                  since: str = typer.Option(..., "--since", help="First day, YYYY-MM-DD."),
                  until: Optional[str] = typer.Option(None, "--until", help="Last day, inclusive (default: today)."),
                  top: int = TopOpt, quiet: bool = QuietOpt) -> None:
    """A period's summary: MTTA/MTTR overall, per severity and per day; volume per topic and per day."""
    with _reporting(quiet) as (service, track):
        written = service.period(_ctx(config), out, now=_now(), since=since, until=until, top=top, track=track)
    _summary_done(written)


def _summary_done(written) -> None:
    report = written.report
    _done(written.files, f"{len(report.days)} day(s), {len(report.incidents)} incidents, {report.total} mentions "
                         f"({report.negative} negative)")
