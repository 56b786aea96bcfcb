"""The cluster store: nodes and their heartbeats, leases (work one node does at a time), and the
sources' schedule shared by every node.

- ``cluster_nodes``: one row per running daemon; its heartbeat, state (running | stopping) and what
  it reports (polls, whether it leads the rules). ``monitor status`` and the console read it.
- ``cluster_leases``: named pieces of work held by one node until ``expires_at`` and renewed by it;
  taken over by another node only once expired. Taking, renewing and releasing are single
  conditional statements, so two nodes can never both hold one.
- ``source_state.next_poll_at`` / ``polled_by``: :func:`claim_poll` moves a source's due time a
  period ahead in one conditional UPDATE, so a source is polled once per period whoever runs it.

Everything takes ``now``; nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.core.errors import LeaseLost
from monitor.storage.models import ClusterLeaseRow, ClusterNodeRow, DeliveryRow, HostSlotRow, SourceStateRow


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    state: str  # running | stopping
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    name: str
    node_id: str
    node_name: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SourceSchedule:
    name: str
    next_poll_at: datetime | None
    polled_by: str | None
    last_poll_at: datetime | None


def _insert(s: Session):
    return {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[s.get_bind().dialect.name]


# -- nodes ---------------------------------------------------------------------------------------
def register(s: Session, node: Node) -> None:
    s.add(ClusterNodeRow(id=node.id, name=node.name, host=node.host, pid=node.pid, version=node.version,
                         started_at=node.started_at, heartbeat_at=node.heartbeat_at, state=node.state,
                         info=node.info))


def heartbeat(s: Session, node_id: str, now: datetime, info: dict[str, Any], state: str | None = None) -> bool:
    """Move the node's heartbeat; False when its row is gone (another node declared it dead)."""
    values: dict[str, Any] = {"heartbeat_at": now, "info": info} | ({"state": state} if state else {})
    return s.execute(update(ClusterNodeRow).where(ClusterNodeRow.id == node_id).values(**values)).rowcount == 1


def database_time(s: Session) -> datetime:
    """The database server's clock (nodes compare theirs with it when they join)."""
    value = s.scalar(select(func.now()))
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def forget(s: Session, node_id: str) -> None:
    s.execute(delete(ClusterNodeRow).where(ClusterNodeRow.id == node_id))


def remove(s: Session, node_id: str) -> None:
    """A node leaving: its row and its leases (handed over at once, not after they expire)."""
    s.execute(delete(ClusterLeaseRow).where(ClusterLeaseRow.node_id == node_id))
    s.execute(delete(ClusterNodeRow).where(ClusterNodeRow.id == node_id))


def prune(s: Session, silent_since: datetime) -> list[str]:
    """Forget nodes with no heartbeat since ``silent_since`` (dead: killed, or cut off); their names."""
    rows = s.execute(select(ClusterNodeRow.id, ClusterNodeRow.name)
                     .where(ClusterNodeRow.heartbeat_at < silent_since)).all()
    if rows:
        s.execute(delete(ClusterNodeRow).where(ClusterNodeRow.id.in_([r.id for r in rows])))
    return [r.name for r in rows]


def nodes(s: Session) -> list[Node]:
    rows = s.scalars(select(ClusterNodeRow).order_by(ClusterNodeRow.started_at, ClusterNodeRow.name))
    return [Node(r.id, r.name, r.host, r.pid, r.version, r.started_at, r.heartbeat_at, r.state, dict(r.info or {}))
            for r in rows]


# -- leases --------------------------------------------------------------------------------------
def acquire(s: Session, name: str, node_id: str, node_name: str, now: datetime, ttl: timedelta) -> bool:
    """Take lease ``name`` for ``ttl`` if it is free, expired or already ours; True if we hold it now."""
    table = ClusterLeaseRow.__table__
    stmt = _insert(s)(table).values(name=name, node_id=node_id, node_name=node_name, acquired_at=now,
                                    expires_at=now + ttl)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"node_id": node_id, "node_name": node_name, "expires_at": now + ttl,
              "acquired_at": stmt.excluded.acquired_at},
        where=or_(table.c.expires_at < now, table.c.node_id == node_id),
    ).returning(table.c.node_id)
    return s.execute(stmt).scalar() == node_id


def renew(s: Session, name: str, node_id: str, now: datetime, ttl: timedelta) -> bool:
    """Extend our lease; False if another node holds it (ours expired and was taken)."""
    return s.execute(update(ClusterLeaseRow)
                     .where(ClusterLeaseRow.name == name, ClusterLeaseRow.node_id == node_id)
                     .values(expires_at=now + ttl)).rowcount == 1


def hold(s: Session, name: str, node_id: str) -> None:
    """Fence: raise :class:`LeaseLost` unless ``node_id`` holds lease ``name``; else keep the lease row
    share-locked until the transaction ends, so no other node can take the lease over meanwhile."""
    holder = s.scalar(select(ClusterLeaseRow.node_id).where(ClusterLeaseRow.name == name)
                      .with_for_update(read=True))
    if holder != node_id:
        raise LeaseLost(f"the {name} lease is held by another node now")


def release(s: Session, name: str, node_id: str) -> None:
    s.execute(delete(ClusterLeaseRow).where(ClusterLeaseRow.name == name, ClusterLeaseRow.node_id == node_id))


def leases(s: Session) -> list[Lease]:
    rows = s.scalars(select(ClusterLeaseRow).order_by(ClusterLeaseRow.name))
    return [Lease(r.name, r.node_id, r.node_name, r.acquired_at, r.expires_at) for r in rows]


# -- the sources' schedule -------------------------------------------------------------------------
def due_sources(s: Session, names: Iterable[str], now: datetime) -> list[str]:
    """Of ``names``, the sources due at ``now`` (never polled, or their next poll time has come)."""
    names = list(names)
    planned = dict(s.execute(select(SourceStateRow.name, SourceStateRow.next_poll_at)
                             .where(SourceStateRow.name.in_(names))).all())
    return [n for n in names if planned.get(n) is None or planned[n] <= now]


def claim_poll(s: Session, name: str, type_: str, now: datetime, next_at: datetime, node: str, *,
               period: timedelta | None = None) -> bool:
    """Take this period's poll of source ``name``: its next poll moves to ``next_at``. False when it is
    not due (another node polled it this period).

    With ``period``, the next poll is counted from when this one was due, not from ``now`` (a poll
    claimed a moment late does not push every later one back): the previous due time + ``period``,
    plus whatever ``next_at`` adds beyond ``now + period`` (jitter); from ``now`` when that has passed.
    """
    if period is not None:
        due = s.scalar(select(SourceStateRow.next_poll_at).where(SourceStateRow.name == name))
        if due is not None and due <= now < due + period:
            next_at = due + period + (next_at - now - period)
    table = SourceStateRow.__table__
    stmt = _insert(s)(table).values(name=name, type=type_, consecutive_failures=0, items_stored=0,
                                    next_poll_at=next_at, polled_by=node, poll_claimed_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"], set_={"next_poll_at": next_at, "polled_by": node, "poll_claimed_at": now},
        where=or_(table.c.next_poll_at.is_(None), table.c.next_poll_at <= now),
    ).returning(table.c.name)
    return s.execute(stmt).scalar() is not None


def plan_first_polls(s: Session, first: dict[str, tuple[str, datetime]]) -> None:
    """Give sources never scheduled their first due time (name -> (type, when)), so that a thousand
    new sources are spread out instead of all polled in the same second."""
    table = SourceStateRow.__table__
    for name, (type_, at) in first.items():
        stmt = _insert(s)(table).values(name=name, type=type_, consecutive_failures=0, items_stored=0,
                                        next_poll_at=at)
        s.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"next_poll_at": at},
                                             where=table.c.next_poll_at.is_(None)))


def unscheduled(s: Session, names: Iterable[str]) -> list[str]:
    """Of ``names``, the sources with no due time yet."""
    names = list(names)
    planned = dict(s.execute(select(SourceStateRow.name, SourceStateRow.next_poll_at)
                             .where(SourceStateRow.name.in_(names))).all())
    return [n for n in names if planned.get(n) is None]


def hand_back(s: Session, dead: list[str], now: datetime) -> list[str]:
    """The work dead nodes had taken and not finished, made due at once: sources whose claimed poll
    never completed, deliveries they claimed; the host slots they held are freed. The sources handed back."""
    if not dead:
        return []
    s.execute(delete(HostSlotRow).where(or_(*(HostSlotRow.holder.startswith(f"{name}/", autoescape=True)
                                              for name in dead))))
    unfinished = or_(SourceStateRow.last_poll_at.is_(None), SourceStateRow.last_poll_at < SourceStateRow.poll_claimed_at)
    names = list(s.scalars(select(SourceStateRow.name).where(SourceStateRow.polled_by.in_(dead), unfinished)))
    if names:
        s.execute(update(SourceStateRow).where(SourceStateRow.name.in_(names)).values(next_poll_at=now))
    s.execute(update(DeliveryRow).where(DeliveryRow.status == "pending", DeliveryRow.claimed_by.in_(dead),
                                        DeliveryRow.next_attempt_at > now)
              .values(next_attempt_at=now, claimed_by=None))
    return names


def take_host_slot(s: Session, host: str, limit: int, holder: str, now: datetime, until: datetime) -> int | None:
    """The first of ``host``'s ``limit`` slots that is free or expired, taken by ``holder`` until ``until``."""
    table = HostSlotRow.__table__
    for slot in range(limit):
        stmt = _insert(s)(table).values(host=host, slot=slot, holder=holder, expires_at=until)
        stmt = stmt.on_conflict_do_update(index_elements=["host", "slot"],
                                          set_={"holder": holder, "expires_at": until},
                                          where=table.c.expires_at < now).returning(table.c.slot)
        if s.execute(stmt).scalar() is not None:
            return slot
    return None


def free_host_slot(s: Session, host: str, slot: int, holder: str) -> None:
    s.execute(delete(HostSlotRow).where(HostSlotRow.host == host, HostSlotRow.slot == slot,
                                        HostSlotRow.holder == holder))


def politeness(s: Session, name: str) -> dict | None:
    return s.scalar(select(SourceStateRow.politeness).where(SourceStateRow.name == name))


def keep_politeness(s: Session, name: str, data: dict | None) -> None:
    s.execute(update(SourceStateRow).where(SourceStateRow.name == name).values(politeness=data))


def schedule(s: Session) -> list[SourceSchedule]:
    rows = s.execute(select(SourceStateRow.name, SourceStateRow.next_poll_at, SourceStateRow.polled_by,
                            SourceStateRow.last_poll_at).order_by(SourceStateRow.name)).all()
    return [SourceSchedule(*row) for row in rows]


@dataclass(frozen=True)
class PollMark:
    """A source's latest poll as stored: the leader turns a change into a poll outcome for the rules."""

    name: str
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    items_stored: int
    snapshot_at: datetime | None = None  # a hot list's latest whole poll


def poll_marks(s: Session) -> dict[str, PollMark]:
    rows = s.execute(select(SourceStateRow.name, SourceStateRow.last_poll_at, SourceStateRow.last_success_at,
                            SourceStateRow.last_error, SourceStateRow.items_stored, SourceStateRow.snapshot_at))
    return {r.name: PollMark(r.name, r.last_poll_at, r.last_success_at, r.last_error, r.items_stored or 0,
                             r.snapshot_at) for r in rows}
