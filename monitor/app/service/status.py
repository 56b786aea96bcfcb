"""Is the daemon alive, what is open and queued, how are the sources (``monitor status``, health checks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts.incident_desk import STATUSES
from monitor.app.lease import DEFAULT_TTL, current, is_alive
from monitor.app.service.context import Context
from monitor.app.service.sources import SourceView, source_views
from monitor.storage import deliveries, incidents


@dataclass(frozen=True)
class Daemon:
    alive: bool  # heartbeat younger than the lease's ttl
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    version: str | None


@dataclass(frozen=True)
class Status:
    daemon: Daemon | None  # None: no lease in this database (never started, or stopped cleanly)
    incidents: dict[str, int]  # per status: open, acknowledged, resolved
    deliveries_pending: int
    deliveries_failed: int  # given up after every retry
    sources: list[SourceView]  # polled sources, by name

    @property
    def alive(self) -> bool:
        return bool(self.daemon and self.daemon.alive)


def status(ctx: Context, now: datetime) -> Status:
    lease = current(ctx.db)
    with ctx.db.session() as s:
        counts = incidents.counts(s)
        depth = deliveries.depths(s)
    per_status = {k: sum(n for (_, status_), n in counts.items() if status_ == k) for k in STATUSES}
    daemon = None
    if lease is not None:
        daemon = Daemon(is_alive(lease, now, DEFAULT_TTL), lease.host, lease.pid, lease.started_at, lease.heartbeat_at,
                        round((now - lease.heartbeat_at).total_seconds(), 1), lease.info.get("version"))
    polled = sorted((v for v in source_views(ctx, now) if v.polled), key=lambda v: v.name)
    return Status(daemon, per_status, depth["pending"], depth["failed"], polled)
