"""The lease store: the one ``daemon_lease`` row (id 1) — who polls this database and its heartbeat.

The decision whether a lease may be taken (is the holder's process gone from this host, or its
heartbeat older than the ttl?) is made by
:mod:`monitor.app.lease` between :func:`locked` and :func:`write`, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.core.errors import LeaseHeld
from monitor.storage.models import DaemonLeaseRow

LEASE_ID = 1


@dataclass(frozen=True)
class LeaseInfo:
    holder: str  # random per daemon start
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    info: dict[str, Any] = field(default_factory=dict)  # version, config path, sources, pid_start


def _record(row: DaemonLeaseRow) -> LeaseInfo:
    return LeaseInfo(row.holder, row.host, row.pid, row.started_at, row.heartbeat_at, dict(row.info or {}))


def current(s: Session) -> LeaseInfo | None:
    row = s.get(DaemonLeaseRow, LEASE_ID)
    return None if row is None else _record(row)


def locked(s: Session) -> LeaseInfo | None:
    """The lease, locked until the transaction ends (``SELECT … FOR UPDATE`` where the database has it)."""
    row = s.get(DaemonLeaseRow, LEASE_ID, with_for_update=True)
    return None if row is None else _record(row)


def write(s: Session, lease: LeaseInfo) -> None:
    """Make ``lease`` the lease: insert the row, or overwrite the one there.

    Two daemons inserting at the same moment: the second gets :class:`LeaseHeld` (the row's
    primary key refuses it), so the flush happens here rather than at commit.
    """
    row = s.get(DaemonLeaseRow, LEASE_ID)
    if row is None:
        s.add(DaemonLeaseRow(id=LEASE_ID, holder=lease.holder, host=lease.host, pid=lease.pid,
                             started_at=lease.started_at, heartbeat_at=lease.heartbeat_at, info=lease.info))
        try:
            s.flush()
        except IntegrityError:
            raise LeaseHeld("another daemon started on this database at the same moment") from None
        return
    row.holder, row.host, row.pid = lease.holder, lease.host, lease.pid
    row.started_at, row.heartbeat_at, row.info = lease.started_at, lease.heartbeat_at, lease.info


def renew(s: Session, holder: str, now: datetime, info: dict[str, Any] | None = None) -> bool:
    """Move the heartbeat (and the info) if ``holder`` still holds the lease; False if it does not."""
    values: dict[str, Any] = {"heartbeat_at": now} | ({"info": info} if info is not None else {})
    result = s.execute(update(DaemonLeaseRow).where(DaemonLeaseRow.id == LEASE_ID, DaemonLeaseRow.holder == holder)
                       .values(**values))
    return result.rowcount == 1


def release(s: Session, holder: str) -> None:
    """Delete the lease if ``holder`` holds it (a lease taken over by another daemon stays)."""
    s.execute(delete(DaemonLeaseRow).where(DaemonLeaseRow.id == LEASE_ID, DaemonLeaseRow.holder == holder))
