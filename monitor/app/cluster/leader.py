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
from typing import TYPE_CHECKING

from monitor.app.cluster.feed import StoredFeed
from monitor.storage import cluster

if TYPE_CHECKING:
    from monitor.app.cluster.daemon import ClusterDaemon

log = logging.getLogger(__name__)
LEASE = "rules"
STEP = 1.0  # seconds between reads of what the nodes stored


class RulesLeader:
    def __init__(self, node: "ClusterDaemon", *, ttl: timedelta, step: float = STEP):
        self.node = node
        self.ttl = ttl
        self.step = step
        self.leading = False
        self.feed = StoredFeed(node.db)
        self._renewed = 0.0  # monotonic time of the last renewal
        self._next_tick: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rules-leader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.step):
            try:
                self.run_once(self.node.clock())
            except Exception:  # noqa: BLE001 - keep trying through database hiccups
                log.exception("[stage=rules] leader step failed")
                if self.leading and time.monotonic() - self._renewed > self.ttl.total_seconds() * 2 / 3:
                    self._resign("cannot renew the rules lease (database unreachable?)")

    def run_once(self, now: datetime) -> None:
        db, node = self.node.db, self.node
        if not self.leading:
            with db.session() as s:
                got = cluster.acquire(s, LEASE, node.node_id, node.node_name, now, self.ttl)
            if got:
                self._renewed = time.monotonic()
                self._lead(now)
            return
        with db.session() as s:
            held = cluster.renew(s, LEASE, node.node_id, now, self.ttl)
        if not held:
            self._resign("another node took the rules lease over")
            return
        self._renewed = time.monotonic()
        self.evaluate(now)

    def _lead(self, now: datetime) -> None:
        pipeline = self.node.pipeline
        log.info("[stage=rules] node %s now leads the rules: warming them up from the database", self.node.node_name)
        pipeline.reset_rules()
        replayed = pipeline.warm_up()
        self.feed.start(now)
        polled = [c for c in self.node.config.sources if c.enabled and not pipeline.sources[c.name].push]
        self.node.watchdog.expect({c.name: c.interval for c in polled}, now)
        self._next_tick = now + self.node.config.scheduler.rules_interval
        self.leading = True
        log.info("[stage=rules] node %s leads the rules (%d stored mentions replayed)", self.node.node_name, replayed)

    def evaluate(self, now: datetime) -> None:
        """One step: what the nodes stored since the last one, time-based rules when due, the watchdog."""
        pipeline = self.node.pipeline
        batch = self.feed.read(now)
        for name, at in batch.polled_at.items():
            self.node.watchdog.polled(name, at)
        if batch.mentions or batch.polls:
            pipeline.evaluate_stored(batch.mentions, batch.polls, now)
        if self._next_tick is not None and now >= self._next_tick:
            self._next_tick = now + self.node.config.scheduler.rules_interval
            pipeline.tick()
        matches = self.node.watchdog.check(now)
        if matches:
            pipeline.notifier.deliver(pipeline.incidents.handle(matches, now), now)

    def _resign(self, why: str) -> None:
        if self.leading:
            log.error("[stage=rules] node %s stops leading the rules: %s", self.node.node_name, why)
        self.leading = False

    def restart(self) -> None:
        """After a reload: lead again with the new config's rules (warmed up afresh)."""
        self.leading = False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.leading:
            self.leading = False
            try:
                with self.node.db.session() as s:
                    cluster.release(s, LEASE, self.node.node_id)
            except Exception:  # noqa: BLE001
                log.exception("[stage=rules] could not hand the rules lease over; another node takes it in %s",
                              self.ttl)
