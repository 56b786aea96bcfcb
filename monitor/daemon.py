"""The daemon: one APScheduler job per source plus a rules tick.

Jobs use ``coalesce=True`` and ``max_instances=1`` (a slow source never piles
up runs) and optional jitter. ``run_until_signalled()`` installs SIGINT/SIGTERM
handlers and shuts down within the configured grace period (default 4 s):
polls in flight get that long to finish storing; anything still fetching is
abandoned, and since cursors move only with stored items, nothing is lost.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import database_url
from monitor.pipeline import Pipeline, utcnow
from monitor.storage import Database

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config, *, db: Database | None = None, clock: Callable[[], datetime] = utcnow,
                 pipeline: Pipeline | None = None):
        self.config = config
        self.db = db or Database(database_url(config))
        self.clock = clock
        self._pipeline = pipeline
        self._stop = threading.Event()
        self._inflight = 0
        self._inflight_cv = threading.Condition()
        self.scheduler: BackgroundScheduler | None = None

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "start() first"
        return self._pipeline

    def start(self) -> None:
        self.db.migrate()
        if self._pipeline is None:
            self._pipeline = Pipeline(self.config, self.db, clock=self.clock)
        log.info("[stage=start] database %s; %d sources, %d topics, %d rules, %d channels",
                 self.db.display_url, len(self.pipeline.sources), len(self.config.topics),
                 len(self.config.rules), len(self.pipeline.notifier.channels))
        self.pipeline.warm_up()
        scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max(2, len(self.pipeline.sources) + 1))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        now = self.clock()
        for cfg in self.config.sources:
            if not cfg.enabled:
                continue
            scheduler.add_job(
                self._guarded, IntervalTrigger(seconds=cfg.interval.total_seconds(),
                                               jitter=cfg.jitter.total_seconds() or None),
                args=[self.pipeline.poll, cfg.name], id=f"source:{cfg.name}", name=f"poll {cfg.name}",
                next_run_time=now,
            )
        scheduler.add_job(
            self._guarded, IntervalTrigger(seconds=self.config.scheduler.rules_interval.total_seconds()),
            args=[self.pipeline.tick], id="rules:tick", name="rules tick",
            next_run_time=now + self.config.scheduler.rules_interval,
        )
        scheduler.start()
        self.scheduler = scheduler

    def _guarded(self, fn, *args) -> None:
        if self._stop.is_set():
            return
        with self._inflight_cv:
            self._inflight += 1
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - the scheduler must keep running whatever one job does
            log.exception("[stage=job] %s failed", getattr(fn, "__name__", fn))
        finally:
            with self._inflight_cv:
                self._inflight -= 1
                self._inflight_cv.notify_all()

    def stop(self, grace: timedelta | None = None) -> bool:
        """Stop scheduling, wait up to ``grace`` for running jobs; True if all finished."""
        self._stop.set()
        grace = grace if grace is not None else self.config.scheduler.shutdown_grace
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        with self._inflight_cv:
            clean = self._inflight_cv.wait_for(lambda: self._inflight == 0, timeout=grace.total_seconds())
        if not clean:
            log.warning("[stage=stop] %d job(s) still running after %s; their fetched items are not stored "
                        "and will be fetched again next start", self._inflight, grace)
        if self._pipeline is not None and clean:
            self._pipeline.close()
        self.db.dispose()
        return clean

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def request_stop(self) -> None:
        self._stop.set()

    def run_until_signalled(self) -> bool:
        """Run in the foreground until SIGINT/SIGTERM; return True on a clean stop."""
        def on_signal(signum, _frame):
            log.info("[stage=stop] %s received, shutting down", signal.Signals(signum).name)
            self._stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stop()
