"""One daemon per database: a lease row with a heartbeat.

``acquire`` succeeds when no lease exists, when it is ours, when the holder ran
on this host and its process is gone (a ``kill -9``: taken over at once, the
restart polls within seconds), or when the holder's heartbeat is older than
``ttl`` (a daemon that died elsewhere); otherwise it raises :class:`LeaseHeld`
naming the other daemon. A PID can be reused: the holder's process start time
(from ``/proc``, kept in the lease's info) must match too. The heartbeat job renews it; a clean
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

__all__ = ["DEFAULT_TTL", "Lease", "LeaseHeld", "LeaseInfo", "current", "is_alive", "process_gone"]

log = logging.getLogger(__name__)
DEFAULT_TTL = timedelta(seconds=60)


def current(db: Database) -> LeaseInfo | None:
    with db.session() as s:
        return store.current(s)


def is_alive(lease: LeaseInfo, now: datetime, ttl: timedelta = DEFAULT_TTL) -> bool:
    """A holder whose heartbeat is younger than ``ttl`` is alive; an older one died (its lease may be taken)."""
    return now - lease.heartbeat_at < ttl


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22); None if unknown."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: count after the last ")".
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_gone(lease: LeaseInfo, host: str) -> bool:
    """True when the lease's holder ran on ``host`` and its process no longer exists (or its PID was reused).

    False when unsure: another host, a process we may not signal, no start time to compare.
    """
    if lease.host != host:
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, someone else's
    recorded = lease.info.get("pid_start")
    now = process_start(lease.pid)
    return recorded is not None and now is not None and recorded != now


class Lease:
    def __init__(self, db: Database, *, ttl: timedelta = DEFAULT_TTL, info: dict | None = None):
        self.db = db
        self.ttl = ttl
        self.holder = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        # The start time tells this process from a later one given the same PID.
        self.info = (info or {}) | {"pid_start": process_start(self.pid)}
        self.held = False

    def acquire(self, now: datetime) -> None:
        with self.db.session() as s:
            held = store.locked(s)
            if held is not None and held.holder != self.holder:
                gone = process_gone(held, self.host)
                if not gone and is_alive(held, now, self.ttl):
                    age = int((now - held.heartbeat_at).total_seconds())
                    raise LeaseHeld(f"another daemon already polls this database: {held.host} pid {held.pid}, "
                                    f"heartbeat {age}s ago (stop it, or wait {int(self.ttl.total_seconds())}s "
                                    f"after it died)")
                log.warning("[stage=start] taking over the lease of %s pid %d (%s)", held.host, held.pid,
                            "that process is gone" if gone else f"no heartbeat since {held.heartbeat_at.isoformat()}")
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
