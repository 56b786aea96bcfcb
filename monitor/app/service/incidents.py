"""Incidents as on-call staff work them: list, view, acknowledge, resolve, note, assign, plan steps,
escalate now, silence the topic; and what the console shows (the queue, the detail, the chart).

Each staff operation is :class:`alerts.incident_desk.IncidentDesk`'s (state checks, timeline events);
this module adds the validation of what people type (``status``, ``since``) and the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.escalation import quiet_until, schedule_for
from alerts.incident_desk import STATUSES, IncidentDesk, IncidentView
from alerts.rules.measurements import measurement_from_numbers
from monitor.app.service import silences
from monitor.app.service.context import Context, duration, local_time
from monitor.core.domain import Mention
from monitor.core.errors import UsageError
from monitor.core.severity import Severity
from monitor.storage import incidents as store
from monitor.storage import timeline
from monitor.storage.incidents import Incident, IncidentEvent, IncidentStep


def _desk(ctx: Context) -> IncidentDesk:
    return IncidentDesk(ctx.db, tz=ctx.tz)


def list_incidents(ctx: Context, now: datetime, *, status: str | None = None, since: str | None = None) -> list[Incident]:
    """Incidents newest first; ``status`` one of open / acknowledged / resolved, ``since`` a duration
    ("24h": opened within the last 24 hours of ``now``)."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status: expected one of {', '.join(STATUSES)}, got {status!r}")
    since_at = now - duration(since, "--since", "24h") if since else None
    return _desk(ctx).list(status=status, since=since_at)


def view(ctx: Context, incident_id: int) -> IncidentView:
    """One incident with its timeline, plan steps and the mentions cited as evidence."""
    return _desk(ctx).view(incident_id)


def acknowledge(ctx: Context, incident_id: int, *, actor: str, now: datetime, note: str | None = None) -> Incident:
    return _desk(ctx).acknowledge(incident_id, actor, now, note)


def resolve(ctx: Context, incident_id: int, *, actor: str, now: datetime, note: str | None = None) -> Incident:
    return _desk(ctx).resolve(incident_id, actor, now, note)


def add_note(ctx: Context, incident_id: int, text: str, *, actor: str, now: datetime) -> None:
    _desk(ctx).add_note(incident_id, actor, now, text)


def assign(ctx: Context, incident_id: int, person: str, *, actor: str, now: datetime) -> None:
    if not person.strip():
        raise UsageError("assign needs a person's name")
    _desk(ctx).assign(incident_id, person.strip(), actor, now)


def set_step(ctx: Context, incident_id: int, position: int, status: str, *, actor: str, now: datetime) -> IncidentStep:
    """Mark step ``position`` of the incident's plan ``done``, ``skipped`` or ``pending`` again."""
    return _desk(ctx).set_step(incident_id, position, status, actor, now)


# -- the console's queue and detail ---------------------------------------------------------
QUEUE_PAGE = 50


@dataclass(frozen=True)
class Queue:
    incidents: list[Incident]  # one page: active (open, acknowledged) first, then resolved; newest first
    counts: dict[str, int]  # per status, under the other filters
    topics: list[str]  # every topic with incidents (for the filter)
    more: bool  # a next page exists


def queue(ctx: Context, now: datetime, *, status: str | None = None, severity: str | None = None,
          topic: str | None = None, since: str | None = None, page: int = 1, per_page: int = QUEUE_PAGE) -> Queue:
    """The incident queue (``since``: a duration back from ``now``, e.g. "7d")."""
    if status and status not in STATUSES:
        raise UsageError(f"--status: expected one of {', '.join(STATUSES)}, got {status!r}")
    if severity and severity not in {s.value for s in Severity}:
        raise UsageError(f"--severity: expected one of I, II, III, IV, got {severity!r}")
    if page < 1:
        raise UsageError(f"page: expected 1 or more, got {page}")
    since_at = now - duration(since, "--since", "24h") if since else None
    filters = {"severity": severity or None, "topic": topic or None, "since": since_at}
    with ctx.db.session() as s:
        rows = store.queue(s, status=status or None, **filters, limit=per_page + 1, offset=(page - 1) * per_page)
        return Queue(rows[:per_page], store.status_counts(s, **filters), store.topics(s), len(rows) > per_page)


@dataclass(frozen=True)
class NextPage:
    """The page 立即升级 would send: step ``step`` of round ``round`` of the incident's escalation
    policy, to ``channels`` (None: every channel); ``due_at``: when it is due without anybody asking."""

    step: int
    round: int
    channels: tuple[str, ...] | None
    due_at: datetime | None


@dataclass(frozen=True)
class IncidentDetail:
    incident: Incident
    events: list[IncidentEvent]
    steps: list[IncidentStep]
    mentions: list[Mention]  # cited as evidence (at most ten)
    figures: list[tuple[str, Any]]  # the labelled figures the rule decided by
    next_page: NextPage | None  # None: nothing left to page (not open, or every step paged)


def detail(ctx: Context, incident_id: int) -> IncidentDetail:
    """Everything the incident page shows but the chart."""
    v = view(ctx, incident_id)
    measurement = measurement_from_numbers(v.incident.rule_type, v.incident.numbers)
    figures = [(label, value) for label, value in measurement.describe() if value is not None]  # old rows lack some
    return IncidentDetail(v.incident, v.events, v.steps, v.mentions, figures, _next_page(ctx, v.incident))


def _next_page(ctx: Context, incident: Incident) -> NextPage | None:
    """What the reminder path (:func:`alerts.incident_policy.reminder`) pages next for an open incident."""
    if incident.status != "open":
        return None
    schedule = schedule_for(Severity(incident.severity), ctx.config.escalation, ctx.config.incidents)
    if incident.escalation_step < 0:  # the first page is still held back (quiet hours)
        step, round_ = 0, 0
    else:
        following = schedule.next_after(incident.escalation_step, incident.escalation_round)
        if following is None:
            return None
        step, round_, _ = following
    return NextPage(step, round_, schedule.channels(step), incident.next_escalation_at)


def escalate_now(ctx: Context, incident_id: int, *, actor: str, now: datetime) -> NextPage:
    """Page the next escalation step now rather than when it falls due.

    The incident's next page is made due at ``now``; the daemon's rules tick (every
    ``scheduler.rules_interval``) then sends it through the reminder path and the notification
    pipeline like any reminder (quiet hours, silences, routing, retries). A console running without
    the daemon (``monitor web``) leaves it due for the daemon that polls this database.
    """
    with ctx.db.session() as s:
        incident = store.get(s, incident_id)
        if incident is None:
            raise UsageError(f"no incident #{incident_id}")
        if incident.status != "open":
            raise UsageError(f"incident #{incident_id} is {incident.status}, only open incidents are escalated")
        page = _next_page(ctx, incident)
        if page is None:
            raise UsageError(f"incident #{incident_id} has paged every step of its escalation policy")
        seen = {"status": "open", "escalation_step": incident.escalation_step,
                "escalation_round": incident.escalation_round}
        if not store.update_if(s, incident_id, seen, next_escalation_at=now, updated_at=now):
            raise UsageError(f"incident #{incident_id} changed meanwhile (a page just went out); look again")
        who = "、".join(page.channels) if page.channels else "所有渠道"
        held = quiet_until(now, Severity(incident.severity), ctx.config.incidents.quiet_hours, ctx.tz)
        message = (f"立即升级：通知 {who}" if held is None
                   else f"立即升级：通知 {who}（静默时段，{local_time(held, ctx.tz, '%H:%M')} 发出）")
        timeline.add_event(s, incident_id, now, "escalate", actor, message, {"step": page.step, "round": page.round})
        return page


def silence_topic(ctx: Context, incident_id: int, *, for_: str, reason: str, actor: str,
                  now: datetime) -> silences.Added:
    """Silence the incident's topic for ``for_`` (:func:`monitor.app.service.silences.add`), on its timeline."""
    incident = _get(ctx, incident_id)
    added = silences.add(ctx, topic=incident.topic, for_=for_, reason=reason, actor=actor, now=now)
    with ctx.db.session() as s:
        until = local_time(added.silence.ends_at, ctx.tz, "%m-%d %H:%M")
        timeline.add_event(s, incident_id, now, "silence", actor,
                           f"静默话题「{incident.topic}」至 {until}：{added.silence.reason}",
                           {"silence_id": added.silence.id})
    return added


def chart(ctx: Context, incident_id: int, *, now: datetime) -> str:
    """The incident review's volume / negative-share chart (an ``<svg>`` drawn by our own code)."""
    from monitor.app.reports import build_incident_report  # the report machinery: for the chart only
    from monitor.app.reports.render import chart_for

    return chart_for(build_incident_report(ctx.db, incident_id, tz=ctx.tz, now=now))


def _get(ctx: Context, incident_id: int) -> Incident:
    with ctx.db.session() as s:
        incident = store.get(s, incident_id)
    if incident is None:
        raise UsageError(f"no incident #{incident_id}")
    return incident
