"""Read-only queries over what happened — mentions, incidents, notifications — for reports and metrics.

Mentions are streamed a time slice at a time with only the columns counted, so a month of data
never sits in memory; callers choose the slices (a progress bar advances per slice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import Row, case, exists, func, or_, select
from sqlalchemy.orm import Session

from monitor.storage.models import DeliveryRow, IncidentRow, MentionRow, NotificationRow, PageRow
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


# -- the notification log, page by page (the console's 通知 screen) --------------------------------
@dataclass(frozen=True)
class Attempt:
    """One row of the notification log: an attempt (sent / failed) or a page held back (attempt 0)."""

    channel: str
    status: str  # sent | failed | silenced | deduplicated
    attempt: int
    at: datetime
    error: str | None
    incident_id: int | None = None
    alert_kind: str | None = None


@dataclass(frozen=True)
class ChannelLog:
    """A page through one channel: the delivery's state and its attempts, oldest first."""

    channel: str
    status: str  # pending | sent | failed | silenced | deduplicated
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    fallback_for: str | None
    log: tuple[Attempt, ...]


@dataclass(frozen=True)
class PageLog:
    id: int
    incident_id: int | None
    alert_kind: str
    alert: dict  # alerts.delivery.alert_to_json: title, topic, severity …
    status: str  # pending | delivered | failed | silenced
    created_at: datetime
    settled_at: datetime | None
    channels: tuple[ChannelLog, ...]

    @property
    def has_failure(self) -> bool:
        return self.status == "failed" or any(c.status == "failed" for c in self.channels)


def _failed_delivery() -> Any:
    return exists(select(DeliveryRow.id).where(DeliveryRow.page_id == PageRow.id, DeliveryRow.status == "failed"))


def page_log(s: Session, *, status: str | None = None, offset: int = 0, limit: int = 30) -> list[PageLog]:
    """Pages with their deliveries and attempts: failed first (the page, then one of its channels),
    then those still pending, then the rest; newest first within each. ``status``: pages of that
    outcome only (``failed`` also takes pages with a failed channel)."""
    rank = case((PageRow.status == "failed", 0), (_failed_delivery(), 1), (PageRow.status.in_(("new", "pending")), 2), else_=3)
    stmt = select(PageRow)
    if status == "failed":
        stmt = stmt.where(or_(PageRow.status == "failed", _failed_delivery()))
    elif status:
        stmt = stmt.where(PageRow.status == status)
    pages = list(s.scalars(stmt.order_by(rank, PageRow.id.desc()).offset(offset).limit(limit)))
    ids = [p.id for p in pages]
    deliveries: dict[int, list[DeliveryRow]] = {i: [] for i in ids}
    attempts: dict[int, list[Attempt]] = {}
    if ids:
        for d in s.scalars(select(DeliveryRow).where(DeliveryRow.page_id.in_(ids)).order_by(DeliveryRow.id)):
            deliveries[d.page_id].append(d)
        delivery_ids = [d.id for rows in deliveries.values() for d in rows]
        for i in range(0, len(delivery_ids), 500):
            for n in s.scalars(select(NotificationRow).where(NotificationRow.delivery_id.in_(delivery_ids[i:i + 500]))
                               .order_by(NotificationRow.id)):
                attempts.setdefault(n.delivery_id, []).append(_attempt(n))
    return [PageLog(p.id, p.incident_id, p.alert_kind, dict(p.alert or {}), p.status, p.created_at, p.settled_at,
                    tuple(ChannelLog(d.channel, d.status, d.attempts, d.next_attempt_at, d.last_error, d.fallback_for,
                                     tuple(attempts.get(d.id, ()))) for d in deliveries[p.id]))
            for p in pages]


def page_counts(s: Session) -> dict[str, int]:
    """Pages per outcome (pending / delivered / failed / silenced)."""
    return dict(s.execute(select(PageRow.status, func.count()).group_by(PageRow.status)).all())


def held_back(s: Session, *, limit: int = 20) -> list[Attempt]:
    """Notifications held back before a page was queued (silenced: no delivery row), newest first."""
    rows = s.scalars(select(NotificationRow).where(NotificationRow.delivery_id.is_(None))
                     .order_by(NotificationRow.id.desc()).limit(limit))
    return [_attempt(n) for n in rows]


def _attempt(n: NotificationRow) -> Attempt:
    return Attempt(n.channel, n.status, n.attempt, n.at, n.error, n.incident_id, n.alert_kind)
