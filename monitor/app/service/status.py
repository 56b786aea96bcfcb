"""Is the daemon alive, what is open and queued, how are the sources (``monitor status``, health checks).

A single daemon holds the ``daemon_lease`` row; several daemons on one PostgreSQL (cluster mode,
:mod:`monitor.app.cluster`) each keep a heartbeat row instead, and :func:`cluster_view` reads those:
the nodes, which one leads the rules, each source's schedule and lag, and the job queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.incident_desk import STATUSES
from monitor.app.lease import DEFAULT_TTL, current, is_alive
from monitor.app.service.context import Context
from monitor.app.service.sources import SourceView, source_views
from monitor.storage import cluster, deliveries, incidents, jobqueue

DEAD_AFTER = timedelta(seconds=10)  # cluster.dead_after's default, when there is no config to ask
DISPATCH_EVERY = timedelta(seconds=2)  # cluster.dispatch_every's default
RULES_LEASE = "rules"  # monitor.app.cluster.leader.LEASE (not imported: it would load the cluster daemon)
QUEUE_STATES = ("todo", "doing", "failed")
UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a relation that does not exist


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
class ClusterNode:
    name: str
    host: str
    pid: int
    version: str
    state: str  # running | stopping
    alive: bool  # heartbeat younger than cluster.dead_after
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    polls: int  # polls this node ran since it started (its own count, sent with each heartbeat)
    running: int  # jobs running on it at its last heartbeat
    leads_rules: bool  # holds the unexpired ``rules`` lease
    sources: int  # sources whose latest poll it took


@dataclass(frozen=True)
class SourceLag:
    name: str
    polled_by: str | None  # the node that took its latest poll
    last_poll_at: datetime | None
    next_poll_at: datetime | None  # when it is due next (None: never scheduled by a cluster node)
    lag_s: float  # now - next_poll_at when that has passed, else 0
    overdue: bool  # lag beyond one dispatch period (a due source waits up to that for the dispatcher)


@dataclass(frozen=True)
class ClusterView:
    enabled: bool  # cluster.enabled in the config that reads it
    dead_after_s: float
    nodes: list[ClusterNode]  # by start time
    leader: str | None  # the node holding the unexpired ``rules`` lease; None: nobody leads the rules now
    sources: list[SourceLag]  # configured, enabled sources with a schedule, by name
    queue: dict[str, int] | None  # jobs todo / doing / failed; None: no job queue in this database

    @property
    def alive(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive]

    @property
    def overdue(self) -> list[SourceLag]:
        """Overdue sources, the latest first."""
        return sorted((v for v in self.sources if v.overdue), key=lambda v: (-v.lag_s, v.name))

    @property
    def worst_lag_s(self) -> float:
        return max((v.lag_s for v in self.sources), default=0.0)


@dataclass(frozen=True)
class Status:
    daemon: Daemon | None  # None: no lease in this database (never started, stopped cleanly, or cluster mode)
    incidents: dict[str, int]  # per status: open, acknowledged, resolved
    deliveries_pending: int
    deliveries_failed: int  # given up after every retry
    sources: list[SourceView]  # polled sources, by name
    cluster: ClusterView | None = None  # None: no cluster node ever ran here and the config does not enable one

    @property
    def alive(self) -> bool:
        """A daemon is working: the single one, or at least one node of the cluster."""
        return bool(self.daemon and self.daemon.alive) or bool(self.cluster and self.cluster.alive)


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
    return Status(daemon, per_status, depth["pending"], depth["failed"], polled, cluster_view(ctx, now))


def cluster_view(ctx: Context, now: datetime) -> ClusterView | None:
    """The cluster as its rows show it; None when there is no cluster to show (no node row, no lease,
    and ``cluster.enabled`` off) — the single daemon's status stays as it was."""
    cfg = getattr(ctx.config, "cluster", None)
    enabled = bool(cfg and cfg.enabled)
    dead_after = getattr(cfg, "dead_after", None) or DEAD_AFTER
    grace = getattr(cfg, "dispatch_every", None) or DISPATCH_EVERY
    with ctx.db.session() as s:
        rows = cluster.nodes(s)
        held = {lease.name: lease for lease in cluster.leases(s)}
        planned = cluster.schedule(s) if rows or held or enabled else []
    if not (rows or held or enabled):
        return None
    rules = held.get(RULES_LEASE)
    leader_id = rules.node_id if rules is not None and rules.expires_at > now else None
    configured = {c.name for c in ctx.config.sources if c.enabled}
    lags = [_lag(p, now, grace) for p in planned if p.name in configured and p.next_poll_at is not None]
    taken: dict[str, int] = {}
    for p in planned:
        if p.polled_by:
            taken[p.polled_by] = taken.get(p.polled_by, 0) + 1
    nodes = [ClusterNode(n.name, n.host, n.pid, n.version, n.state, now - n.heartbeat_at < dead_after, n.started_at,
                         n.heartbeat_at, round((now - n.heartbeat_at).total_seconds(), 1),
                         int(n.info.get("polls") or 0), int(n.info.get("running") or 0), n.id == leader_id,
                         taken.get(n.name, 0))
             for n in rows]
    leader = rules.node_name if leader_id is not None and rules is not None else None
    return ClusterView(enabled, dead_after.total_seconds(), nodes, leader, lags, _queue(ctx))


def _lag(p: cluster.SourceSchedule, now: datetime, grace: timedelta) -> SourceLag:
    late = max(0.0, (now - p.next_poll_at).total_seconds()) if p.next_poll_at else 0.0
    return SourceLag(p.name, p.polled_by, p.last_poll_at, p.next_poll_at, round(late, 1), late > grace.total_seconds())


def _queue(ctx: Context) -> dict[str, int] | None:
    """Jobs todo / doing / failed; None on SQLite, or on a PostgreSQL where no node installed the queue yet."""
    if ctx.db.is_sqlite:
        return None
    try:
        counts = jobqueue.running(ctx.db)
    except Exception as exc:  # noqa: BLE001 - the app layer sees no SQLAlchemy; only "no such table" is expected
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == UNDEFINED_TABLE:
            return None
        raise
    return {state: counts.get(state, 0) for state in QUEUE_STATES}
