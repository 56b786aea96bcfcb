"""A daemon that is one node of a cluster: several daemons on one PostgreSQL share the work.

Same pipeline, same job functions as the single daemon (:mod:`monitor.app.daemon`); what triggers
them differs. The job queue (:mod:`monitor.app.cluster.queue`, procrastinate) hands each due source
to one node at a time and sends due deliveries from any node. The rules are one piece of state, so
one node leads them (:mod:`monitor.app.cluster.leader`: a lease it renews every second), reading
what every node stored; when it dies another node takes the lease and warms the rules up from the
database exactly as a restart does. Each node writes a heartbeat row (``monitor status``); a node
silent for ``cluster.dead_after`` is forgotten and its unfinished polls and claimed sends handed back.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from datetime import datetime, timedelta

from monitor import __version__
from monitor.app.cluster.hostslots import SharedHostSlots
from monitor.app.cluster.leader import RulesLeader
from monitor.app.cluster.queue import JobQueue, schema_sql
from monitor.app.config import database_url
from monitor.app.daemon import FIRST_RUN_SPREAD, SUPERVISE_EVERY, Daemon
from monitor.app.pipeline import Pipeline
from monitor.app import lease
from monitor.core.configtypes import format_duration
from monitor.core.errors import LeaseHeld, StorageError
from monitor.storage.lease import LeaseInfo
from monitor.storage import cluster, deliveries, jobqueue
from sources.httpguard import HOST_LIMITS

log = logging.getLogger(__name__)


class ClusterDaemon(Daemon):
    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        cfg = config.cluster
        self.node_id = uuid.uuid4().hex
        self.node_name = cfg.node_name or f"{socket.gethostname()}:{os.getpid()}"
        self.queue: JobQueue | None = None
        self.leader: RulesLeader | None = None
        self.polls = 0  # polls this node ran (status pages)
        self._count_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config.cluster
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # a line per job otherwise
            logging.getLogger("procrastinate").setLevel(logging.WARNING)
        self.db.migrate()  # under an advisory lock: in a rolling upgrade one node migrates, the others wait
        if jobqueue.ensure_schema(self.db, schema_sql()):
            log.info("[stage=start] installed the job queue's tables in %s", self.db.display_url)
        self.db.limit_sessions(int(cfg.dead_after.total_seconds()))  # after migrating: that may wait on a lock
        now = self.clock()
        self._check_joinable(now)
        deliveries.set_claimer(self.node_name)
        HOST_LIMITS.share(SharedHostSlots(self.db, self.node_name, self.clock))
        with self.db.session() as s:
            cluster.register(s, cluster.Node(self.node_id, self.node_name, socket.gethostname(), os.getpid(),
                                             __version__, now, now, "running", self._info()))
        self.lease.held = True  # the node row stands in for the single daemon's lease (/healthz)
        if self._pipeline is None:
            self._pipeline = Pipeline(self.config, self.db, clock=self.clock, metrics=self.metrics, evaluate=False)
        self._limit_hosts()
        self.started_at = now
        log.info("[stage=start] node %s joined the cluster on %s; %d sources, %d topics, %d rules",
                 self.node_name, self.db.display_url, len(self.pipeline.sources), len(self.config.topics),
                 len(self.config.rules))
        self._supervisor = threading.Thread(target=self._supervise_loop, name="supervisor", daemon=True)
        self._supervisor.start()
        self.leader = RulesLeader(self, ttl=cfg.dead_after)
        self.leader.start()
        self._serve_http()
        self.queue = JobQueue(self, database_url(self.config), name=self.node_name, concurrency=cfg.concurrency,
                              dispatch_s=int(cfg.dispatch_every.total_seconds()),
                              heartbeat_s=cfg.heartbeat.total_seconds(), dead_after_s=cfg.dead_after.total_seconds())
        self.queue.start()

    def _check_joinable(self, now: datetime) -> None:
        """Refuse to join beside a single daemon, under a name a live node uses, or with a clock far off
        the database's (heartbeats and leases compare the nodes' clocks)."""
        single = lease.current(self.db)
        host = socket.gethostname()
        if single is not None and lease.is_alive(single, now) and not lease.process_gone(single, host):
            raise LeaseHeld(f"a single daemon (not clustered) polls this database: {single.host} pid {single.pid}; "
                            "stop it, or enable cluster in its config too")
        dead_after = self.config.cluster.dead_after
        with self.db.session() as s:
            skew = abs((now - cluster.database_time(s)).total_seconds())
            same = [n for n in cluster.nodes(s) if n.name == self.node_name and now - n.heartbeat_at < dead_after]
            for other in same:  # this host's previous run of this node, killed a moment ago: its work goes back
                if lease.process_gone(LeaseInfo("", other.host, other.pid, other.started_at, other.heartbeat_at), host):
                    cluster.forget(s, other.id)
                    cluster.hand_back(s, [other.name], now)
                else:
                    raise LeaseHeld(f"cluster.node_name {self.node_name!r} is used by a live node ({other.host} pid "
                                    f"{other.pid}): give each node its own name, e.g. node_name: ${{NODE_NAME}} set "
                                    "per host")
        if skew > dead_after.total_seconds() / 3:
            raise StorageError(f"this host's clock is {skew:.1f}s off the database's: nodes would take each other for "
                               f"dead (cluster.dead_after {format_duration(dead_after)}); synchronise it (NTP)")
        if skew > 1:
            log.warning("[stage=start] this host's clock is %.1fs off the database's; keep the nodes' clocks "
                        "synchronised (NTP)", skew)

    def stop(self, grace: timedelta | None = None) -> bool:
        """Leave the cluster: stop taking jobs, finish or cancel the running ones, hand back the
        rules and every unfinished poll at once (not after ``dead_after``)."""
        self._stop.set()
        grace = grace if grace is not None else self.config.scheduler.shutdown_grace
        if self._pipeline is not None:
            self._pipeline.cancel()
        clean = self.queue.stop(grace.total_seconds() + 1) if self.queue is not None else True
        clean = self._wait_idle(grace) and clean
        if self.leader is not None:
            self.leader.stop()
        if self.httpd is not None:
            self.httpd.stop(timeout=grace.total_seconds())
        if self._supervisor is not None:
            self._supervisor.join(timeout=SUPERVISE_EVERY + 1)
        try:
            with self.db.session() as s:
                handed = cluster.hand_back(s, [self.node_name], self.clock())
                cluster.remove(s, self.node_id)
            log.info("[stage=stop] node %s left the cluster%s", self.node_name,
                     f"; handed back {len(handed)} unfinished poll(s)" if handed else "")
        except Exception:  # noqa: BLE001 - a dead database must not turn a stop into a crash
            log.exception("[stage=stop] could not leave the cluster cleanly; the others notice in %s",
                          self.config.cluster.dead_after)
        self.lease.held = False
        HOST_LIMITS.share(None)
        deliveries.set_claimer(None)
        if self._pipeline is not None:
            self._pipeline.retire()
        self.db.dispose()
        return clean

    # -- jobs (called by the job queue's worker) ----------------------------------------------
    def poll_job(self, name: str) -> None:
        cfg = next((c for c in self.config.sources if c.name == name and c.enabled), None)
        if cfg is None or self._stop.is_set() or name not in self.pipeline.sources:
            return  # removed by a reload, or leaving
        now = self.clock()
        jitter = cfg.jitter.total_seconds() * random.random()
        source = self.pipeline.sources[name]
        with self.db.session() as s:
            if not cluster.claim_poll(s, name, cfg.type, now, now + cfg.interval + timedelta(seconds=jitter),
                                      self.node_name, period=cfg.interval):
                return  # polled this period already (a job deferred twice, or retried)
            source.restore_politeness(cluster.politeness(s, name))  # whoever polled last was told to slow down
        self.watchdog.polled(name, now)
        with self._count_lock:
            self.polls += 1
        self._guarded(self.pipeline.poll, name)
        with self.db.session() as s:
            cluster.keep_politeness(s, name, source.politeness())

    def deliver_job(self) -> None:
        self._guarded(self.pipeline.deliver_due)

    def plan_dispatch(self) -> list[str]:
        """Housekeeping for the cluster, then the sources due now with no poll waiting or running."""
        now = self.clock()
        with self.db.session() as s:
            dead = cluster.prune(s, now - self.config.cluster.dead_after)
            handed = cluster.hand_back(s, dead, now)
        if dead:
            log.warning("[stage=cluster] node(s) %s stopped beating for %s: forgotten; %d unfinished poll(s) "
                        "and their claimed sends handed back", ", ".join(dead), self.config.cluster.dead_after,
                        len(handed))
        polled = [c for c in self.config.sources
                  if c.enabled and c.name in self.pipeline.sources and not self.pipeline.sources[c.name].push]
        with self.db.session() as s:
            new = set(cluster.unscheduled(s, [c.name for c in polled]))
            if new:  # first polls spread like the single daemon's (FIRST_RUN_SPREAD), not all at once
                fresh = [c for c in polled if c.name in new]
                cluster.plan_first_polls(s, {c.name: (c.type, now + min(c.interval, FIRST_RUN_SPREAD) * (i / len(fresh)))
                                             for i, c in enumerate(fresh)})
            due = cluster.due_sources(s, [c.name for c in polled], now)
        busy = jobqueue.queued(self.db, [f"source:{n}" for n in due])
        return [n for n in due if f"source:{n}" not in busy]

    # -- heartbeat -------------------------------------------------------------------
    def _info(self) -> dict:
        return {"version": __version__, "config": str(self.config_path or ""), "polls": self.polls,
                "dead_after": self.config.cluster.dead_after.total_seconds(),
                "leader": bool(self.leader and self.leader.leading), "running": self._inflight,
                "sources": self.watchdog.snapshot()}

    def supervise(self, now: datetime) -> None:
        with self.db.session() as s:
            if cluster.heartbeat(s, self.node_id, now, self._info()):
                return
            log.warning("[stage=cluster] this node was taken for dead (no heartbeat for %s); joining again",
                        self.config.cluster.dead_after)
            cluster.register(s, cluster.Node(self.node_id, self.node_name, socket.gethostname(), os.getpid(),
                                             __version__, self.started_at or now, now, "running", self._info()))

    def _supervise_loop(self) -> None:
        every = self.config.cluster.heartbeat.total_seconds()
        while not self._stop.wait(every):
            try:
                self.supervise(self.clock())
            except Exception:  # noqa: BLE001 - keep beating through database hiccups
                log.exception("[stage=supervise] heartbeat failed")

    # -- reload ------------------------------------------------------------------------
    def reload(self) -> bool:
        if self.config_path is None:
            log.warning("[stage=reload] no config file to reload")
            return False
        loaded = self._load_for_reload()
        if loaded is None:
            return False
        new, pipeline = loaded
        old, self._pipeline, self.config = self._pipeline, pipeline, new
        old.cancel()
        old.retire()
        self._limit_hosts()
        self._serve_http()
        self.leader.restart()  # the rules of the new config, warmed up afresh if this node leads
        log.info("[stage=reload] config reloaded from %s: %d sources, %d rules", self.config_path,
                 len(new.sources), len(new.rules))
        return True
