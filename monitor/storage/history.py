"""Read-only queries over what happened — mentions, incidents, notifications — for reports and metrics.

Mentions are streamed a time slice at a time with only the columns counted, so a month of data
never sits in memory; callers choose the slices (a progress bar advances per slice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from monitor.storage.models import IncidentRow, MentionRow, NotificationRow
from monitor.storage.repo import mention_columns, mention_fields


@dataclass(frozen=True)
class MentionPoint:
    """What a report counts of one mention (the Mention fields of the same names)."""

    id: int
    published_at: datetime
    label: str | None
    score: float | None
    topics: tuple[str, ...]
    author: str | None
    story_id: int | None
    repost_count: int


_POINT_COLUMNS = mention_columns(*MentionPoint.__dataclass_fields__)


def mention_points(s: Session, start: datetime, end: datetime) -> Iterator[MentionPoint]:
    """The mentions published in ``[start, end)``, oldest first, streamed."""
    stmt = (select(*_POINT_COLUMNS)
            .where(MentionRow.published_at >= start, MentionRow.published_at < end)
            .order_by(MentionRow.published_at, MentionRow.id))
    for row in s.execute(stmt):
        yield MentionPoint(**mention_fields(row))


def incidents_active_between(s: Session, start: datetime, end: datetime) -> list[Row]:
    """Incidents open at some time in ``[start, end)``, newest first: rows whose attributes are the
    ``incidents`` columns (read-only)."""
    return list(s.execute(
        select(IncidentRow.__table__)
        .where(IncidentRow.opened_at < end, or_(IncidentRow.resolved_at.is_(None), IncidentRow.resolved_at >= start))
        .order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())))


def notification_counts(s: Session, incident_id: int | None = None) -> list[tuple[str, str, int]]:
    """(channel, status, number of attempts) from the delivery log — of one incident, or of all."""
    stmt = select(NotificationRow.channel, NotificationRow.status, func.count())
    if incident_id is not None:
        stmt = stmt.where(NotificationRow.incident_id == incident_id)
    return [tuple(r) for r in s.execute(stmt.group_by(NotificationRow.channel, NotificationRow.status))]
