"""One daemon per database: a lease row with a heartbeat.

``acquire`` succeeds when no lease exists, when it is ours, or when the holder's
heartbeat is older than ``ttl`` (a crashed daemon); otherwise it raises
:class:`LeaseHeld` naming the other daemon. The heartbeat job renews it; a clean
stop releases it. The row (:mod:`monitor.storage.lease`) is also what ``monitor status`` reads.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from monitor.core.errors import LeaseHeld
from monitor.storage import Database
from monitor.storage import lease as store
from monitor.storage.lease import LeaseInfo

__all__ = ["DEFAULT_TTL", "Lease", "LeaseHeld", "LeaseInfo", "current", "is_alive"]

log = logging.getLogger(__name__)
DEFAULT_TTL = timedelta(seconds=60)


def current(db: Database) -> LeaseInfo | None:
    with db.session() as s:
        return store.current(s)


def is_alive(lease: LeaseInfo, now: datetime, ttl: timedelta = DEFAULT_TTL) -> bool:
    """A holder whose heartbeat is younger than ``ttl`` is alive; an older one died (its lease may be taken)."""
    return now - lease.heartbeat_at < ttl


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
        with self.db.session() as s:
            held = store.locked(s)
            if held is not None and held.holder != self.holder:
                if is_alive(held, now, self.ttl):
                    age = int((now - held.heartbeat_at).total_seconds())
                    raise LeaseHeld(f"another daemon already polls this database: {held.host} pid {held.pid}, "
                                    f"heartbeat {age}s ago (stop it, or wait {int(self.ttl.total_seconds())}s "
                                    f"after it died)")
                log.warning("[stage=start] taking over the lease of %s pid %d (no heartbeat since %s)",
                            held.host, held.pid, held.heartbeat_at.isoformat())
            store.write(s, LeaseInfo(self.holder, self.host, self.pid, now, now, self.info))
        self.held = True

    def renew(self, now: datetime, info: dict | None = None) -> bool:
        """Heartbeat; False if the lease was taken over (then this daemon must stop polling)."""
        with self.db.session() as s:
            self.held = store.renew(s, self.holder, now, info)
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        with self.db.session() as s:
            store.release(s, self.holder)
        self.held = False
