"""The rules of a cluster: one node leads them at a time, by a lease it renews every step.

The rules are state machines over the recent past; split across nodes they would each see part of
a burst. So one node — whichever holds the ``rules`` lease — runs them over what every node stored
(:class:`monitor.app.cluster.feed.StoredFeed`), opens incidents and queues their pages. Taking the
lease, it warms the rules up from the database exactly as a restarting single daemon does, so a new
leader neither forgets nor re-pages (an incident already open is found open; a page already pending
is refused by the pages' unique index).

A leader that cannot renew (cut off from the database) stops leading after two thirds of the lease,
before any other node may take it; a node leaving hands the lease over at once.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from monitor.app.cluster.feed import StoredFeed
from monitor.core.errors import LeaseLost
from monitor.storage import cluster

if TYPE_CHECKING:
    from monitor.app.cluster.daemon import ClusterDaemon

log = logging.getLogger(__name__)
LEASE = "rules"
STEP = 1.0  # seconds between reads of what the nodes stored


class RulesLeader:
    """Two threads: ``rules-lease`` takes and renews the lease every step whatever the rules are doing
    (a warm-up replaying a busy hour takes seconds: it must not let the lease lapse), ``rules-leader``
    warms up once the lease is held and then evaluates every step while it is still held."""

    def __init__(self, node: "ClusterDaemon", *, ttl: timedelta, step: float = STEP):
        self.node = node
        self.ttl = ttl
        self.step = step
        self.leading = False  # holds the lease and has warmed up: evaluates
        self.feed = StoredFeed(node.db)
        self._holding = False  # holds the lease (the lease thread's view)
        self._renewed = 0.0  # monotonic time of the last renewal
        self._next_tick: datetime | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, target in (("rules-lease", self._lease_loop), ("rules-leader", self._loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- the lease ---------------------------------------------------------------------
    def _lease_loop(self) -> None:
        while not self._stop.wait(self.step):
            try:
                self.keep_lease(self.node.clock())
            except Exception:  # noqa: BLE001 - keep trying through database hiccups
                log.exception("[stage=rules] could not take or renew the rules lease")
                if self._holding and not self._fresh():
                    self._resign("cannot renew the rules lease (database unreachable?)")

    def keep_lease(self, now: datetime) -> None:
        db, node = self.node.db, self.node
        with db.session() as s:
            if self._holding:
                held = cluster.renew(s, LEASE, node.node_id, now, self.ttl)
            else:
                held = cluster.acquire(s, LEASE, node.node_id, node.node_name, now, self.ttl)
        if held:
            self._renewed = time.monotonic()
            self._holding = True
        elif self._holding:
            self._resign("another node took the rules lease over")

    def _fresh(self) -> bool:
        """Renewed recently enough: no other node can have taken the lease (it stops two thirds in)."""
        return time.monotonic() - self._renewed < self.ttl.total_seconds() * 2 / 3

    # -- the rules ---------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.step):
            try:
                self.run_once(self.node.clock())
            except LeaseLost:  # fenced: another node leads now; nothing of this step was written
                self._resign("another node took the rules lease over")
            except Exception:  # noqa: BLE001 - keep going through database hiccups
                log.exception("[stage=rules] leader step failed")

    def run_once(self, now: datetime) -> None:
        if not (self._holding and self._fresh()):
            if self.leading:
                self._resign("the rules lease is not renewed")
            return
        if not self.leading:
            self._lead(now)
            return
        self.evaluate(now)

    def _lead(self, now: datetime) -> None:
        pipeline = self.node.pipeline
        log.info("[stage=rules] node %s now leads the rules: warming them up from the database", self.node.node_name)
        pipeline.incidents.fence = partial(cluster.hold, name=LEASE, node_id=self.node.node_id)
        pipeline.reset_rules()
        self.feed.start(now)  # first: what is stored from here on is the feed's, not the warm-up's
        replayed = pipeline.warm_up(up_to_id=self.feed.last_id, skip_ids=set(self.feed.holes))
        polled = [c for c in self.node.config.sources if c.enabled and not pipeline.sources[c.name].push]
        self.node.watchdog.expect({c.name: c.interval for c in polled}, now)
        self._next_tick = now + self.node.config.scheduler.rules_interval
        if not (self._holding and self._fresh()):
            log.warning("[stage=rules] node %s lost the rules lease while warming up", self.node.node_name)
            return
        self.leading = True
        log.info("[stage=rules] node %s leads the rules (%d stored mentions replayed)", self.node.node_name, replayed)

    def evaluate(self, now: datetime) -> None:
        """One step: what the nodes stored since the last one, time-based rules when due, the watchdog."""
        pipeline = self.node.pipeline
        batch = self.feed.read(now)
        for name, at in batch.polled_at.items():
            self.node.watchdog.polled(name, at)
        if batch.mentions or batch.polls or batch.snapshots:
            pipeline.evaluate_stored(batch.mentions, batch.polls, now, batch.snapshots)
        if self._next_tick is not None and now >= self._next_tick:
            self._next_tick = now + self.node.config.scheduler.rules_interval
            pipeline.tick()
        matches = self.node.watchdog.check(now)
        if matches:
            pipeline.notifier.deliver(pipeline.incidents.handle(matches, now), now)

    def _resign(self, why: str) -> None:
        if self.leading or self._holding:
            log.error("[stage=rules] node %s stops leading the rules: %s", self.node.node_name, why)
        self.leading = self._holding = False

    def restart(self) -> None:
        """After a reload: lead again with the new config's rules (warmed up afresh)."""
        self.leading = False

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._holding:
            self.leading = self._holding = False
            try:
                with self.node.db.session() as s:
                    cluster.release(s, LEASE, self.node.node_id)
            except Exception:  # noqa: BLE001
                log.exception("[stage=rules] could not hand the rules lease over; another node takes it in %s",
                              self.ttl)
