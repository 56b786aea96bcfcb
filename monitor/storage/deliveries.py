"""The deliveries store: the persistent queue behind :class:`alerts.notify.Notifier`.

- ``pages``: one alert to deliver (its JSON, made by ``alerts.delivery.alert_to_json``) with its
  outcome: ``pending`` → ``delivered`` (a first channel got it), ``failed`` (every channel gave up)
  or ``silenced`` (the channels left were silenced on a retry).
- ``deliveries``: the page through one channel — ``pending`` with a due time ``next_attempt_at``,
  then ``sent``, ``failed`` (out of attempts), ``silenced`` or ``deduplicated`` (not sent). A
  delivery being worked on is *claimed* by moving ``next_attempt_at`` a lease ahead, in one
  conditional UPDATE, so two workers never send it twice and a crash mid-send only delays it by
  the lease (at-least-once).
- ``notifications``: the notification log, one row per attempt (sent / failed) or per page held
  back (silenced / deduplicated, attempt 0), linked to its delivery when there is one.

Everything here takes ``now``; nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.storage.models import DeliveryRow, IncidentRow, NotificationRow, PageRow

BATCH = 200  # deliveries claimed per claim_due call
# Who claims: this process's node name in a cluster (set once at start; None on a single daemon). A
# node found dead has its claims handed back at once (storage.cluster.hand_back), not after the lease.
CLAIMER: str | None = None


def set_claimer(name: str | None) -> None:
    global CLAIMER
    CLAIMER = name


@dataclass(frozen=True)
class Job:
    """One claimed delivery, ready to be attempted."""

    delivery_id: int
    page_id: int
    channel: str
    attempts: int  # attempts made before this one
    fallback_for: str | None = None


@dataclass(frozen=True)
class Page:
    id: int
    incident_id: int | None
    alert_kind: str
    dedup_key: str
    alert: dict[str, Any]
    status: str  # pending | delivered | failed | silenced
    alarm_at: datetime | None  # when "reached no channel" was first reported


@dataclass(frozen=True)
class Delivery:
    channel: str
    status: str  # pending | sent | failed | silenced | deduplicated
    next_attempt_at: datetime | None
    last_error: str | None


# -- queueing ------------------------------------------------------------------------------------
def enqueue(s: Session, *, incident_id: int | None, alert_kind: str, dedup_key: str, alert: dict[str, Any],
            channels: list[str], now: datetime, claim_until: datetime) -> list[Job]:
    """Store the page and one delivery per channel, due at ``claim_until``.

    That is the caller's claim when it attempts them at once; a later time defers them. Nothing is
    stored (``[]``) when a page with this ``dedup_key`` is already pending: another daemon queued
    the same page (a unique index decides, whatever the interleaving).
    """
    page_id = _insert_page(s, incident_id, alert_kind, dedup_key, alert, "pending", now)
    return [] if page_id is None else _add_deliveries(s, page_id, channels, now, claim_until)


def stage(s: Session, *, incident_id: int | None, alert_kind: str, dedup_key: str, alert: dict[str, Any],
          now: datetime) -> int | None:
    """Store a page not yet queued (status ``new``), in the transaction of the incident change that
    made it: a crash before :func:`fill` leaves it to :func:`claim_orphans`, never loses it. None when
    the same page is already new or pending (made by another daemon): then it is not paged twice."""
    return _insert_page(s, incident_id, alert_kind, dedup_key, alert, "new", now)


def _insert_page(s: Session, incident_id: int | None, alert_kind: str, dedup_key: str, alert: dict[str, Any],
                 status: str, now: datetime) -> int | None:
    """The new page's id; None when the unique index refuses it (the same page is new or pending)."""
    page = PageRow(incident_id=incident_id, alert_kind=alert_kind, dedup_key=dedup_key, alert=alert,
                   status=status, created_at=now)
    try:
        with s.begin_nested():  # a savepoint: the refusal costs only this insert, not the transaction
            s.add(page)
            s.flush()
    except IntegrityError:
        return None
    return page.id


def fill(s: Session, page_id: int, alert: dict[str, Any], channels: list[str], now: datetime,
         claim_until: datetime) -> list[Job]:
    """Queue a staged page as ``alert`` (what is sent, and read back for retries): one delivery per
    channel, due at ``claim_until``. ``[]`` when it is not ``new`` any more (another daemon queued it)."""
    taken = s.execute(update(PageRow).where(PageRow.id == page_id, PageRow.status == "new")
                      .values(status="pending", alert=alert)).rowcount == 1
    return _add_deliveries(s, page_id, channels, now, claim_until) if taken else []


def _add_deliveries(s: Session, page_id: int, channels: list[str], now: datetime, claim_until: datetime) -> list[Job]:
    """One pending delivery of the page per channel, claimed by this worker until ``claim_until``."""
    rows = [DeliveryRow(page_id=page_id, channel=name, status="pending", attempts=0, next_attempt_at=claim_until,
                        claimed_by=CLAIMER, created_at=now, updated_at=now) for name in channels]
    s.add_all(rows)
    s.flush()
    return [Job(r.id, page_id, r.channel, 0) for r in rows]


def drop_unqueued(s: Session, page_id: int) -> None:
    """A staged page that needed no delivery after all (no channel takes it, or it was silenced)."""
    s.execute(delete(PageRow).where(PageRow.id == page_id, PageRow.status == "new"))


def claim_orphans(s: Session, now: datetime, made_before: datetime) -> list[Page]:
    """Staged pages never queued (their process died in between), each claimed for this worker by
    moving its ``created_at`` to ``now`` in a conditional UPDATE."""
    ids = list(s.scalars(select(PageRow.id).where(PageRow.status == "new", PageRow.created_at <= made_before)
                         .order_by(PageRow.id).limit(BATCH)))
    out = []
    for page_id in ids:
        if s.execute(update(PageRow).where(PageRow.id == page_id, PageRow.status == "new",
                                           PageRow.created_at <= made_before)
                     .values(created_at=now)).rowcount == 1:
            out.append(page(s, page_id))
    return out


def add_fallback(s: Session, page_id: int, channel: str, instead_of: str, now: datetime,
                 claim_until: datetime) -> Job | None:
    """A claimed delivery of the page through ``channel``; None if the page already goes there."""
    exists = s.scalar(select(DeliveryRow.id).where(DeliveryRow.page_id == page_id, DeliveryRow.channel == channel))
    if exists is not None:
        return None
    row = DeliveryRow(page_id=page_id, channel=channel, status="pending", attempts=0, next_attempt_at=claim_until,
                      fallback_for=instead_of, claimed_by=CLAIMER, created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return Job(row.id, page_id, channel, 0, instead_of)


def claim(s: Session, delivery_id: int, now: datetime, claim_until: datetime) -> bool:
    """Take one due delivery; False if another worker took it first (a conditional UPDATE)."""
    return s.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id == delivery_id, DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
        .values(next_attempt_at=claim_until, claimed_by=CLAIMER, updated_at=now)
    ).rowcount == 1


def claim_due(s: Session, now: datetime, claim_until: datetime) -> list[Job]:
    """Claim the pending deliveries due at ``now`` (oldest first).

    On PostgreSQL the rows are locked as they are read and rows another node is claiming are
    skipped (``FOR UPDATE SKIP LOCKED``), so daemons sharing the queue never wait for or take
    each other's; the conditional UPDATE in :func:`claim` keeps SQLite (one writer) as safe.
    """
    rows = s.execute(
        select(DeliveryRow.id, DeliveryRow.page_id, DeliveryRow.channel, DeliveryRow.attempts,
               DeliveryRow.fallback_for)
        .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
        .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id).limit(BATCH)
        .with_for_update(skip_locked=True, of=DeliveryRow)
    ).all()
    return [Job(row.id, row.page_id, row.channel, row.attempts, row.fallback_for)
            for row in rows if claim(s, row.id, now, claim_until)]


def defer(s: Session, job: Job, until: datetime, now: datetime) -> None:
    s.execute(update(DeliveryRow).where(DeliveryRow.id == job.delivery_id)
              .values(next_attempt_at=until, claimed_by=None, updated_at=now))


# -- the notification log ------------------------------------------------------------------------
def next_free_slot(s: Session, channel: str, messages: int, per: timedelta, now: datetime) -> datetime | None:
    """None if ``channel`` may send at ``now`` under a limit of ``messages`` per ``per``; otherwise
    the earliest time it may.

    Counts the attempts recorded in ``notifications`` within the last ``per``, so the limit holds
    across threads (callers serialise per channel) and restarts.
    """
    times = list(s.scalars(
        select(NotificationRow.at)
        .where(NotificationRow.channel == channel, NotificationRow.status.in_(("sent", "failed")),
               NotificationRow.at > now - per)
        .order_by(NotificationRow.at)
    ))
    if len(times) < messages:
        return None
    return times[len(times) - messages] + per


def sent_before(s: Session, channel: str, dedup_key: str) -> int | None:
    """The id of the first notification with ``dedup_key`` that ``channel`` sent, if any."""
    return s.scalar(select(NotificationRow.id)
                    .where(NotificationRow.channel == channel, NotificationRow.dedup_key == dedup_key,
                           NotificationRow.status == "sent")
                    .order_by(NotificationRow.id).limit(1))


def record_attempt(s: Session, job: Job, *, status: str, attempt: int, error: str | None,
                   retry_at: datetime | None, now: datetime) -> None:
    """The attempt's notifications row (``status`` sent or failed), and the delivery's new state:
    sent, pending again until ``retry_at``, or failed when there is no retry."""
    page = s.get(PageRow, job.page_id)
    s.add(NotificationRow(incident_id=page.incident_id, channel=job.channel, alert_kind=page.alert_kind,
                          dedup_key=page.dedup_key, status=status, attempt=attempt, at=now, error=error,
                          delivery_id=job.delivery_id))
    state = "sent" if status == "sent" else ("pending" if retry_at is not None else "failed")
    s.execute(update(DeliveryRow).where(DeliveryRow.id == job.delivery_id).values(
        status=state, attempts=attempt, next_attempt_at=retry_at, last_error=error, claimed_by=None, updated_at=now))


def record_skip(s: Session, *, incident_id: int | None, alert_kind: str, dedup_key: str, channel: str,
                status: str, reason: str, now: datetime, job: Job | None = None) -> None:
    """A page held back from ``channel`` (``status`` silenced or deduplicated): a notifications row
    with attempt 0, and — when the page is queued (``job``) — its delivery closed with that status."""
    s.add(NotificationRow(incident_id=incident_id, channel=channel, alert_kind=alert_kind, dedup_key=dedup_key,
                          status=status, attempt=0, at=now, error=reason,
                          delivery_id=job.delivery_id if job is not None else None))
    if job is not None:
        s.execute(update(DeliveryRow).where(DeliveryRow.id == job.delivery_id)
                  .values(status=status, next_attempt_at=None, updated_at=now))


# -- pages ---------------------------------------------------------------------------------------
def page(s: Session, page_id: int) -> Page | None:
    row = s.get(PageRow, page_id)
    if row is None:
        return None
    return Page(row.id, row.incident_id, row.alert_kind, row.dedup_key, row.alert, row.status, row.alarm_at)


def deliveries_of(s: Session, page_id: int) -> list[Delivery]:
    rows = s.scalars(select(DeliveryRow).where(DeliveryRow.page_id == page_id).order_by(DeliveryRow.id))
    return [Delivery(r.channel, r.status, r.next_attempt_at, r.last_error) for r in rows]


def settle_page(s: Session, page_id: int, status: str, now: datetime) -> None:
    """The page's outcome: ``delivered``, ``failed`` or ``silenced``."""
    s.execute(update(PageRow).where(PageRow.id == page_id).values(status=status, settled_at=now))


def raise_alarm(s: Session, page_id: int, now: datetime) -> None:
    """Remember that "reached no channel" was reported, so it is reported once."""
    s.execute(update(PageRow).where(PageRow.id == page_id).values(alarm_at=now))


def mark_notified(s: Session, incident_id: int | None, now: datetime) -> None:
    """The incident's ``last_notified_at``: a page of it reached a channel at ``now``."""
    if incident_id is not None:
        s.execute(update(IncidentRow).where(IncidentRow.id == incident_id).values(last_notified_at=now))


def depths(s: Session) -> dict[str, int]:
    """Queue depths for status pages: deliveries waiting (``pending``) and given up (``failed``)."""
    counts = dict(s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)).all())
    return {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
