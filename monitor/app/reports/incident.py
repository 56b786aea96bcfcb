"""The review (复盘) of one incident: its timeline, response times, plan steps and the mentions around it."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from alerts.incident_desk import IncidentDesk
from alerts.rules.measurements import measurement_from_numbers
from monitor.app.reports.model import ChannelStat, IncidentReport, IncidentSummary, Marker, StepEntry, TimelineEntry
from monitor.app.reports.scan import (MentionStats, Track, choose_step, floor_to, mention_entries, mention_entry,
                                     no_progress, scan)
from monitor.storage import Database, history

DEFAULT_RULE_WINDOW = timedelta(hours=1)


def summarize(row, *, carried_over: bool = False) -> IncidentSummary:
    """``row``: a stored incident (any record with the ``incidents`` columns as attributes)."""
    return IncidentSummary(
        id=row.id, title=row.title, topic=row.topic, rule=row.rule, severity=row.severity, status=row.status,
        reason=row.reason, numbers=dict(row.numbers or {}), opened_at=row.opened_at, acked_at=row.acked_at,
        acked_by=row.acked_by, resolved_at=row.resolved_at, resolved_by=row.resolved_by, assignee=row.assignee,
        plan=row.plan, carried_over=carried_over)


def build_incident_report(db: Database, incident_id: int, *, tz: str, now: datetime,
                          before: timedelta = timedelta(hours=2), after: timedelta = timedelta(hours=1),
                          top: int = 10, track: Track = no_progress) -> IncidentReport:
    """Collect everything the incident review shows; raises UsageError for an unknown id.

    The chart covers ``before`` the incident opened until ``after`` its last
    activity (resolution, or the latest timeline entry while it is open), but
    not beyond ``now``. Top
    negative mentions and authors come from the incident itself: from one rule
    window before it opened until it was resolved.
    """
    view = IncidentDesk(db, tz=tz).view(incident_id)
    row = view.incident
    incident = summarize(row)
    timeline = [TimelineEntry(e.at, e.kind, e.actor, e.message) for e in view.events]
    last = max([row.opened_at, *(e.at for e in view.events),
                *(t for t in (row.resolved_at, row.last_signal_at) if t is not None)])
    # the window the rule counted in when it fired (an hour for rule types without one)
    window = measurement_from_numbers(row.rule_type, row.numbers or {}).window or DEFAULT_RULE_WINDOW
    focus_start = row.opened_at - window
    # an ongoing incident's chart ends now, not in the future
    raw_start, raw_end = min(row.opened_at - before, focus_start), max(min(last + after, now), last)
    step = choose_step(raw_end - raw_start)
    start, end = floor_to(raw_start, step, tz), floor_to(raw_end, step, tz) + step
    focus = (focus_start, row.resolved_at or end)
    with db.session() as s:
        stats = scan(s, MentionStats(start, end, step, tz=tz, top=top, focus=focus), topic=row.topic,
                     track=track, description=f"incident #{incident_id}: mentions")
        top_negative = mention_entries(s, stats.worst_ids())
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for channel, status, n in history.notification_counts(s, incident_id):
            counts[channel][status] += n
    markers = [Marker(row.opened_at, "opened")]
    markers += [Marker(e.at, "escalated") for e in view.events if e.kind == "escalated"]
    markers += [Marker(at, label) for at, label in ((row.acked_at, "acked"), (row.resolved_at, "resolved")) if at]
    return IncidentReport(
        incident=incident, timeline=timeline,
        steps=[StepEntry(st.position, st.title, st.owner, st.status, st.due_at, st.done_at, st.done_by)
               for st in view.steps],
        series=stats.series(), markers=sorted(markers, key=lambda m: m.at),
        span_start=focus[0], span_end=focus[1], total=stats.focus_total, negative=stats.focus_negative,
        top_negative=top_negative, top_authors=stats.top_authors(),
        evidence=[mention_entry(m) for m in view.mentions],
        notifications=[ChannelStat(c, v.get("sent", 0), v.get("failed", 0), v.get("silenced", 0))
                       for c, v in sorted(counts.items())],
        tz=tz, generated_at=now)
