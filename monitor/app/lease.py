"""One daemon per database: a lease row with a heartbeat.

``acquire`` succeeds when no lease exists, when it is ours, or when the holder's
heartbeat is older than ``ttl`` (a crashed daemon); otherwise it raises
:class:`LeaseHeld` naming the other daemon. The heartbeat job renews it; a clean
stop releases it. The row is also what ``monitor status`` reads.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from monitor.core.errors import LeaseHeld, MonitorError, StorageError  # noqa: F401 - LeaseHeld re-exported
from monitor.storage import Database
from monitor.storage.models import DaemonLeaseRow

log = logging.getLogger(__name__)
LEASE_ID = 1
DEFAULT_TTL = timedelta(seconds=60)


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    info: dict


def current(db: Database) -> LeaseInfo | None:
    with db.session() as s:
        row = s.get(DaemonLeaseRow, LEASE_ID)
        return None if row is None else LeaseInfo(row.holder, row.host, row.pid, row.started_at, row.heartbeat_at,
                                                  dict(row.info or {}))


class Lease:
    def __init__(self, db: Database, *, ttl: timedelta = DEFAULT_TTL, info: dict | None = None):
        self.db = db
        self.ttl = ttl
        self.holder = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.info = info or {}
        self.held = False

    def acquire(self, now: datetime) -> None:
        try:
            with self.db.session() as s:
                row = s.get(DaemonLeaseRow, LEASE_ID, with_for_update=True)
                if row is None:
                    s.add(DaemonLeaseRow(id=LEASE_ID, holder=self.holder, host=self.host, pid=self.pid,
                                         started_at=now, heartbeat_at=now, info=self.info))
                elif row.holder != self.holder and now - row.heartbeat_at < self.ttl:
                    age = int((now - row.heartbeat_at).total_seconds())
                    raise LeaseHeld(f"another daemon already polls this database: {row.host} pid {row.pid}, "
                                    f"heartbeat {age}s ago (stop it, or wait {int(self.ttl.total_seconds())}s "
                                    f"after it died)")
                else:
                    if row.holder != self.holder:
                        log.warning("[stage=start] taking over the lease of %s pid %d (no heartbeat since %s)",
                                    row.host, row.pid, row.heartbeat_at.isoformat())
                    row.holder, row.host, row.pid = self.holder, self.host, self.pid
                    row.started_at = row.heartbeat_at = now
                    row.info = self.info
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # another daemon inserted the row first
                raise LeaseHeld("another daemon started on this database at the same moment") from None
            raise
        self.held = True

    def renew(self, now: datetime, info: dict | None = None) -> bool:
        """Heartbeat; False if the lease was taken over (then this daemon must stop polling)."""
        values = {"heartbeat_at": now} | ({"info": info} if info is not None else {})
        with self.db.session() as s:
            result = s.execute(update(DaemonLeaseRow).where(DaemonLeaseRow.id == LEASE_ID,
                                                            DaemonLeaseRow.holder == self.holder).values(**values))
            self.held = result.rowcount == 1
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        with self.db.session() as s:
            s.execute(delete(DaemonLeaseRow).where(DaemonLeaseRow.id == LEASE_ID,
                                                   DaemonLeaseRow.holder == self.holder))
        self.held = False


