"""The persistent delivery queue behind :class:`alerts.notify.Notifier`.

- ``pages``: one alert to deliver, serialised (:func:`alert_to_json`), with its
  outcome: ``pending`` → ``delivered`` (a first channel got it) or ``failed``
  (every channel gave up).
- ``deliveries``: the page through one channel — ``pending`` with a due time
  ``next_attempt_at``, then ``sent`` or ``failed`` (out of attempts). A
  delivery being worked on is *claimed* by moving ``next_attempt_at`` a lease
  ahead, in one conditional UPDATE, so two workers never send it twice and a
  crash mid-send only delays it by the lease (at-least-once).
- ``notifications``: one row per attempt (sent / failed), linked to its delivery.

Everything here takes ``now``; nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from alerts.alert import Alert
from alerts.channels.base import RateLimit
from monitor.core.severity import Severity
from monitor.core.domain import Mention
from monitor.storage.models import DeliveryRow, NotificationRow, PageRow

BATCH = 200  # deliveries claimed per run_due call


# -- alerts as JSON ------------------------------------------------------------------------
def _mention_to_json(m: Mention) -> dict:
    data = asdict(m)
    for key in ("published_at", "fetched_at"):
        data[key] = data[key].isoformat()
    data["topics"] = list(m.topics)
    return data


def _mention_from_json(data: dict) -> Mention:
    known = {f.name for f in fields(Mention)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("published_at", "fetched_at"):
        values[key] = datetime.fromisoformat(values[key])
    values["topics"] = tuple(values.get("topics") or ())
    return Mention(**values)


def alert_to_json(alert: Alert) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields(Alert):
        value = getattr(alert, f.name)
        if f.name == "severity":
            value = value.value
        elif f.name == "at":
            value = value.isoformat()
        elif f.name == "top_mentions":
            value = [_mention_to_json(m) for m in value]
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return data


def alert_from_json(data: dict[str, Any]) -> Alert:
    """The inverse of :func:`alert_to_json`; keys of fields that no longer exist are ignored."""
    values: dict[str, Any] = {}
    for f in fields(Alert):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "severity":
            value = Severity(value)
        elif f.name == "at":
            value = datetime.fromisoformat(value)
        elif f.name == "top_mentions":
            value = tuple(_mention_from_json(m) for m in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return Alert(**values)


# -- the queue ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One claimed delivery, ready to be attempted."""

    delivery_id: int
    page_id: int
    channel: str
    attempts: int  # attempts made before this one
    fallback_for: str | None = None


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: Literal["sent", "failed", "deferred"]
    attempt: int = 0
    error: str | None = None
    retry_at: datetime | None = None  # failed: the next attempt (None: gave up); deferred: when allowed

    @property
    def gave_up(self) -> bool:
        return self.status == "failed" and self.retry_at is None

    @property
    def label(self) -> str:
        """How the channel is named on the timeline."""
        if self.job.fallback_for:
            return f"{self.job.channel}（备用，替代{self.job.fallback_for}）"
        return self.job.channel if self.attempt <= 1 else f"{self.job.channel}（第{self.attempt}次尝试）"


def enqueue(s: Session, alert: Alert, channels: list[str], now: datetime, claim_until: datetime) -> list[Job]:
    """Store the page and one delivery per channel, claimed by the caller until ``claim_until``."""
    page = PageRow(incident_id=alert.incident_id, alert_kind=alert.kind, dedup_key=alert.dedup_key,
                   alert=alert_to_json(alert), status="pending", created_at=now)
    s.add(page)
    s.flush()
    rows = [DeliveryRow(page_id=page.id, channel=name, status="pending", attempts=0, next_attempt_at=claim_until,
                        created_at=now, updated_at=now) for name in channels]
    s.add_all(rows)
    s.flush()
    return [Job(r.id, page.id, r.channel, 0) for r in rows]


def add_fallback(s: Session, page_id: int, channel: str, instead_of: str, now: datetime,
                 claim_until: datetime) -> Job | None:
    """A claimed delivery of the page through ``channel``; None if the page already goes there."""
    exists = s.scalar(select(DeliveryRow.id).where(DeliveryRow.page_id == page_id, DeliveryRow.channel == channel))
    if exists is not None:
        return None
    row = DeliveryRow(page_id=page_id, channel=channel, status="pending", attempts=0, next_attempt_at=claim_until,
                      fallback_for=instead_of, created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return Job(row.id, page_id, channel, 0, instead_of)


def claim(s: Session, delivery_id: int, now: datetime, claim_until: datetime) -> bool:
    """Take one due delivery; False if another worker took it first (a conditional UPDATE)."""
    return s.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id == delivery_id, DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
        .values(next_attempt_at=claim_until, updated_at=now)
    ).rowcount == 1


def claim_due(s: Session, now: datetime, claim_until: datetime) -> list[Job]:
    """Claim the pending deliveries due at ``now`` (oldest first)."""
    rows = s.execute(
        select(DeliveryRow.id, DeliveryRow.page_id, DeliveryRow.channel, DeliveryRow.attempts,
               DeliveryRow.fallback_for)
        .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
        .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id).limit(BATCH)
    ).all()
    return [Job(row.id, row.page_id, row.channel, row.attempts, row.fallback_for)
            for row in rows if claim(s, row.id, now, claim_until)]


def next_free_slot(s: Session, channel: str, limit: RateLimit, now: datetime) -> datetime | None:
    """None if ``channel`` may send at ``now``; otherwise the earliest time it may.

    Counts the attempts recorded in ``notifications`` within the last ``limit.per``,
    so the limit holds across threads (callers serialise per channel) and restarts.
    """
    times = list(s.scalars(
        select(NotificationRow.at)
        .where(NotificationRow.channel == channel, NotificationRow.status.in_(("sent", "failed")),
               NotificationRow.at > now - limit.per)
        .order_by(NotificationRow.at)
    ))
    if len(times) < limit.messages:
        return None
    return times[len(times) - limit.messages] + limit.per


def defer(s: Session, job: Job, until: datetime, now: datetime) -> None:
    s.execute(update(DeliveryRow).where(DeliveryRow.id == job.delivery_id)
              .values(next_attempt_at=until, updated_at=now))


def record_attempt(s: Session, job: Job, page: PageRow, outcome: Outcome, now: datetime) -> None:
    """The attempt's notifications row, and the delivery's new state."""
    s.add(NotificationRow(incident_id=page.incident_id, channel=job.channel, alert_kind=page.alert_kind,
                          dedup_key=page.dedup_key, status=outcome.status, attempt=outcome.attempt, at=now,
                          error=outcome.error, delivery_id=job.delivery_id))
    status = "sent" if outcome.status == "sent" else ("failed" if outcome.gave_up else "pending")
    s.execute(update(DeliveryRow).where(DeliveryRow.id == job.delivery_id).values(
        status=status, attempts=outcome.attempt, next_attempt_at=outcome.retry_at, last_error=outcome.error,
        updated_at=now))


def depths(s: Session) -> dict[str, int]:
    """Queue depths for status pages: deliveries waiting (``pending``) and given up (``failed``)."""
    counts = dict(s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)).all())
    return {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
