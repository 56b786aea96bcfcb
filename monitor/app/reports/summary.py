"""Daily and period reports: incidents with MTTA/MTTR, volume and negative share per topic and per day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Sequence
from zoneinfo import ZoneInfo

from monitor.core.severity import Severity
from monitor.core.errors import UsageError
from monitor.app.reports.incident import summarize
from monitor.app.reports.model import DayStat, SeverityStat, SummaryReport, TopicStat, mean_duration
from monitor.app.reports.scan import MentionStats, Track, choose_step, mention_entries, no_progress, scan
from monitor.storage import Database, history

MAX_DAYS = 366


def day_bounds(first_day: date, last_day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC bounds of ``[first_day 00:00, last_day + 1 00:00)`` on the local clock of ``tz``."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first_day, time(), zone).astimezone(timezone.utc)
    end = datetime.combine(last_day + timedelta(days=1), time(), zone).astimezone(timezone.utc)
    return start, end


def build_summary(db: Database, first_day: date, last_day: date, *, tz: str, now: datetime,
                  topics: Sequence[str] = (), top: int = 10, track: Track = no_progress) -> SummaryReport:
    """Everything the daily (one day) or period report shows; UsageError when the days hold no data.

    Incidents listed are those active at some time in the period; MTTA and
    MTTR are over the incidents *opened* in it (acknowledged / resolved ones).
    """
    if last_day < first_day:
        raise UsageError(f"the period ends ({last_day}) before it starts ({first_day})")
    n_days = (last_day - first_day).days + 1
    if n_days > MAX_DAYS:
        raise UsageError(f"a report covers at most {MAX_DAYS} days, asked for {n_days}")
    start, end = day_bounds(first_day, last_day, tz)
    step = timedelta(hours=1) if n_days == 1 else choose_step(end - start)
    label = str(first_day) if n_days == 1 else f"{first_day} – {last_day}"
    with db.session() as s:
        stats = scan(s, MentionStats(start, end, step, tz=tz, top=top), track=track,
                     description=f"{label}: mentions")
        rows = history.incidents_active_between(s, start, end)
        top_negative = mention_entries(s, stats.worst_ids())
    if not stats.total and not rows:
        raise UsageError(f"no data for {label} ({tz}): no mentions and no incidents")
    incidents = [summarize(r, carried_over=r.opened_at < start) for r in rows]
    opened = [i for i in incidents if not i.carried_over]
    zone = ZoneInfo(tz)
    days = []
    for k in range(n_days):
        day = first_day + timedelta(days=k)
        that_day = [i for i in opened if i.opened_at.astimezone(zone).date() == day]
        total, negative = stats.day_counts(day)
        days.append(DayStat(day, total, negative, len(that_day), mean_duration(i.tta for i in that_day),
                            mean_duration(i.ttr for i in that_day)))
    by_severity = []
    for sev in (Severity.I, Severity.II, Severity.III, Severity.IV):
        these = [i for i in opened if i.severity == sev.value]
        if these:
            by_severity.append(SeverityStat(sev.value, len(these), mean_duration(i.tta for i in these),
                                            mean_duration(i.ttr for i in these)))
    names = list(dict.fromkeys([*stats.topics, *topics]))
    topic_stats = sorted((TopicStat(t, stats.topics.get(t, 0), stats.topic_negatives.get(t, 0)) for t in names),
                         key=lambda t: (-t.negative, -t.total, t.topic))
    return SummaryReport(
        kind="daily" if n_days == 1 else "period", first_day=first_day, last_day=last_day, start=start, end=end,
        tz=tz, incidents=incidents, by_severity=by_severity, topics=topic_stats, days=days, series=stats.series(),
        total=stats.total, negative=stats.negative, top_negative=top_negative, top_authors=stats.top_authors(),
        generated_at=now, opened=opened)
