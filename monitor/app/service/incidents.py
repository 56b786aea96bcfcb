"""Incidents as on-call staff work them: list, view, acknowledge, resolve, note, assign, plan steps.

Each operation is :class:`alerts.incident_desk.IncidentDesk`'s (state checks, timeline events);
this module adds the validation of what people type (``status``, ``since``) and the context.
"""

from __future__ import annotations

from datetime import datetime

from alerts.incident_desk import STATUSES, IncidentDesk, IncidentView
from monitor.app.service.context import Context, duration
from monitor.core.errors import UsageError
from monitor.storage.incidents import Incident, IncidentStep


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
    _desk(ctx).assign(incident_id, person, actor, now)


def set_step(ctx: Context, incident_id: int, position: int, status: str, *, actor: str, now: datetime) -> IncidentStep:
    """Mark step ``position`` of the incident's plan ``done``, ``skipped`` or ``pending`` again."""
    return _desk(ctx).set_step(incident_id, position, status, actor, now)
