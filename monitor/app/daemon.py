"""The daemon: one APScheduler job per source plus a rules tick, under a supervisor.

Jobs use ``coalesce=True`` and ``max_instances=1`` (a slow source never piles
up runs) and optional jitter. A supervisor thread, independent of the
scheduler, renews the database lease (one daemon per database; the heartbeat
``monitor status`` shows) and pages through the watchdog when the scheduler
stops polling. ``run_until_signalled()`` handles SIGINT/SIGTERM (stop within the
grace period: polls in flight are cancelled — a blocked read is broken, nothing
partial is stored, and since cursors move only with stored items nothing is lost;
other jobs get the grace period to finish, and a job still running after it is
abandoned by ending the process) and SIGHUP (reload the config file: validated
first, a bad file keeps the old config and says why; the old pipeline's polls
are cancelled and its clients, pool and channels closed when its last job ends).
"""

from __future__ import annotations

import hmac
import logging
import os
import signal
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import __version__
from monitor.app.config import database_url, load_config
from monitor.core.errors import ConfigError
from monitor.app.httpd import DEFAULT_BIND, HttpServer, Request, Response
from monitor.app.lease import Lease, LeaseHeld
from monitor.app.metrics import Metrics, health
from monitor.app.pipeline import Pipeline, utcnow
from monitor.app.service import Context
from monitor.storage import Database
from monitor.app.watchdog import Watchdog
from sources.httpguard import configure_hosts

log = logging.getLogger(__name__)
SUPERVISE_EVERY = 5.0  # seconds between heartbeats / watchdog checks
LEASE_TTL_FOR_NODES = timedelta(seconds=10)  # a cluster node silent this much past its dead_after is surely gone
# First polls are spread over this much (never more than a source's interval): a hundred sources
# started in the same instant share one core, and the first of them is stored only when most are done.
FIRST_RUN_SPREAD = timedelta(seconds=30)


class Daemon:
    def __init__(self, config, *, db: Database | None = None, clock: Callable[[], datetime] = utcnow,
                 pipeline: Pipeline | None = None, config_path: str | Path | None = None,
                 web: Callable[..., Any] | None = None):
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.db = db or Database(database_url(config))
        self.clock = clock
        self._pipeline = pipeline
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._inflight = 0
        self._inflight_cv = threading.Condition()
        self.scheduler: BackgroundScheduler | None = None
        self.lease = Lease(self.db, info={"version": __version__, "config": str(self.config_path or "")})
        self.watchdog = Watchdog()
        self._supervisor: threading.Thread | None = None
        self.httpd: HttpServer | None = None
        # The web console's app factory, web(Context, daemon_routes=HttpServer) -> ASGI app (monitor.web.app.create_app,
        # given by the front end that starts the daemon): served on the listener next to the daemon's routes.
        self.web = web
        self._console_app: Any = None  # the console app the listener serves (set when it starts)
        self.metrics = Metrics(self.db)
        self.started_at: datetime | None = None
        self._push_routes: dict[str, str] = {}  # path -> push source name

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "start() first"
        return self._pipeline

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self.db.migrate()
        self._refuse_if_clustered()
        self.lease.acquire(self.clock())
        if self._pipeline is None:
            self._pipeline = Pipeline(self.config, self.db, clock=self.clock, metrics=self.metrics)
        self._limit_hosts()
        self.started_at = self.clock()
        log.info("[stage=start] database %s; %d sources, %d topics, %d rules, %d channels",
                 self.db.display_url, len(self.pipeline.sources), len(self.config.topics),
                 len(self.config.rules), len(self.pipeline.notifier.channels))
        # the heartbeat first: a long warm-up must not look like a dead daemon (or a free lease)
        self._supervisor = threading.Thread(target=self._supervise_loop, name="supervisor", daemon=True)
        self._supervisor.start()
        self.pipeline.warm_up()
        self._serve_http()
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max(2, len(self.pipeline.sources) + 2))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._add_jobs()
        self.scheduler.start()

    def _refuse_if_clustered(self) -> None:
        """A single daemon beside live cluster nodes would poll every source a second time."""
        from monitor.storage import cluster

        with self.db.session() as s:
            alive = [n for n in cluster.nodes(s) if (self.clock() - n.heartbeat_at).total_seconds()
                     < float(n.info.get("dead_after") or 0) + LEASE_TTL_FOR_NODES.total_seconds()]
        if alive:
            raise LeaseHeld(f"daemons of a cluster already poll this database ({', '.join(n.name for n in alive)}); "
                            "start this one with cluster.enabled in its config to join them")

    def _limit_hosts(self) -> None:
        """Per-host request limits from this config (http.hosts, else the smallest any source asks for)."""
        hosts = self.config.http.hosts if self.config.http is not None else {}
        configure_hosts([c for c in self.config.sources if c.enabled],
                        {host: h.max_concurrent for host, h in hosts.items()})

    def _add_jobs(self) -> None:
        now = self.clock()
        polled = [c for c in self.config.sources if c.enabled and not self.pipeline.sources[c.name].push]
        self.watchdog.expect({c.name: c.interval for c in polled}, now)
        for i, cfg in enumerate(polled):
            first = now + min(cfg.interval, FIRST_RUN_SPREAD) * (i / len(polled))
            self.scheduler.add_job(
                self._guarded, IntervalTrigger(seconds=cfg.interval.total_seconds(),
                                               jitter=cfg.jitter.total_seconds() or None),
                args=[self._poll, cfg.name], id=f"source:{cfg.name}", name=f"poll {cfg.name}", next_run_time=first,
            )
        self.scheduler.add_job(
            self._guarded, IntervalTrigger(seconds=self.config.scheduler.rules_interval.total_seconds()),
            args=[self.pipeline.tick], id="rules:tick", name="rules tick",
            next_run_time=now + self.config.scheduler.rules_interval,
        )
        self.scheduler.add_job(  # retries, rate-limited sends, pages left pending by a previous run
            self._guarded, IntervalTrigger(seconds=self.config.delivery.interval.total_seconds()),
            args=[self.pipeline.deliver_due], id="delivery", name="delivery retries", next_run_time=now,
        )

    # -- HTTP listener: /healthz, /metrics and push intake (webhook sources) -------------
    def _serve_http(self) -> None:
        """Start the listener when configured or needed, and route each push source's path to the pipeline."""
        push = {s.config.route: name for name, s in self.pipeline.sources.items() if s.push}
        console = self.web is not None and "console" in self.config.model_fields_set
        if self.httpd is None and (push or self.config.http is not None or console):
            http = self.config.http
            self.httpd = HttpServer(http.bind if http else DEFAULT_BIND,
                                    max_body=http.max_body if http else 10 * 1024 * 1024,
                                    app_factory=self._console if console else None)
            self.httpd.add_route("GET", "/healthz", self._healthz)
            self.httpd.add_route("GET", "/metrics", self._metrics)
            self._register_push(push)
            self.httpd.start()
        elif self.httpd is not None:
            self._register_push(push)
        else:
            self._push_routes = push

    def _console(self, server: HttpServer) -> Any:
        self._console_app = self.web(Context(self.config, self.db), daemon_routes=server)
        return self._console_app

    def _healthz(self, _request: Request) -> Response:
        status, body = health(now=self.clock(), lease_held=self.lease.held,
                              overdue=self.watchdog.overdue(self.clock()), started_at=self.started_at)
        return Response(status, body, {"Content-Type": "application/json; charset=utf-8"})

    def _metrics(self, request: Request) -> Response:
        token = self.config.console.metrics_token
        if token and not hmac.compare_digest(request.headers.get("authorization", "").encode(),
                                             f"Bearer {token}".encode()):
            return Response.json({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
        body, content_type = self.metrics.exposition()
        return Response(200, body, {"Content-Type": content_type})

    def _register_push(self, push: dict[str, str]) -> None:
        for path in push:
            if path not in self._push_routes and ("POST", path) not in self.httpd.routes:
                self.httpd.add_route("POST", path, lambda req, path=path: self._push(path, req))
        self._push_routes = push

    def _push(self, path: str, request: Request) -> Response:
        name = self._push_routes.get(path)
        if name is None or self._stop.is_set():  # removed by a reload, or shutting down
            return Response.json({"error": "not found" if name is None else "shutting down"},
                                 404 if name is None else 503)
        with self._inflight_cv:  # a stop waits for pushes being stored, like for polls
            self._inflight += 1
        try:
            pipeline = self.pipeline
            source = pipeline.sources[name]
            return source.handler(lambda result: pipeline.ingest(name, result),
                                  lambda reason: pipeline.record_failure(name, reason))(request)
        finally:
            with self._inflight_cv:
                self._inflight -= 1
                self._inflight_cv.notify_all()

    def _poll(self, name: str) -> None:
        self.watchdog.polled(name, self.clock())
        self.pipeline.poll(name)

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

    def _wait_idle(self, grace: timedelta) -> bool:
        with self._inflight_cv:
            return self._inflight_cv.wait_for(lambda: self._inflight == 0, timeout=grace.total_seconds())

    def stop(self, grace: timedelta | None = None) -> bool:
        """Stop scheduling, wait up to ``grace`` for running jobs; True if all finished."""
        self._stop.set()
        grace = grace if grace is not None else self.config.scheduler.shutdown_grace
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._pipeline is not None:
            self._pipeline.cancel()  # polls stop now, storing nothing; deliveries and pushes get the grace
        clean = self._wait_idle(grace)
        if not clean:
            log.warning("[stage=stop] %d job(s) still running after %s; their fetched items are not stored "
                        "and will be fetched again next start", self._inflight, grace)
        if self.httpd is not None:
            self.httpd.stop(timeout=grace.total_seconds())
        if self._supervisor is not None:
            self._supervisor.join(timeout=SUPERVISE_EVERY + 1)
        try:
            self.lease.release()
        except Exception:  # noqa: BLE001 - a dead database must not turn a stop into a crash
            log.exception("[stage=stop] could not release the daemon lease")
        if self._pipeline is not None:
            self._pipeline.retire()  # closed now, or by the job still running when it ends
        self.db.dispose()
        return clean

    # -- supervisor: heartbeat and watchdog ---------------------------------------------
    def _supervise_loop(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY):
            try:
                self.supervise(self.clock())
            except Exception:  # noqa: BLE001 - keep supervising through database hiccups
                log.exception("[stage=supervise] check failed")

    def supervise(self, now: datetime) -> None:
        """One heartbeat + watchdog check (the supervisor thread calls this every few seconds)."""
        if not self.lease.renew(now, info=self.lease.info | {"sources": self.watchdog.snapshot()}):
            log.error("[stage=supervise] another daemon took over this database's lease; stopping")
            self._stop.set()
            return
        matches = self.watchdog.check(now)
        if matches:
            alerts = self.pipeline.incidents.handle(matches, now)
            self.pipeline.notifier.deliver(alerts, now)

    # -- reload ------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the config file; on any problem keep running with the old one."""
        if self.config_path is None:
            log.warning("[stage=reload] no config file to reload")
            return False
        loaded = self._load_for_reload()
        if loaded is None:
            return False
        new, pipeline = loaded
        self.scheduler.remove_all_jobs()
        self._pipeline.cancel()  # its polls store nothing and run again at once on the new config
        if not self._wait_idle(self.config.scheduler.shutdown_grace):
            log.warning("[stage=reload] jobs still running; they finish on the old config, closed after them")
        old, self._pipeline, self.config = self._pipeline, pipeline, new
        old.retire()  # its HTTP clients, pool and channels: closed when its last job ends
        if self._console_app is not None:  # its services see the new escalation, topics and rules
            self._console_app.state.ctx = Context(new, self.db)
        self._limit_hosts()
        pipeline.warm_up()
        self._serve_http()
        self._add_jobs()
        log.info("[stage=reload] config reloaded from %s: %d sources, %d rules, %d channels",
                 self.config_path, len(new.sources), len(new.rules), len(new.channels))
        return True

    def _load_for_reload(self) -> tuple[Any, Pipeline] | None:
        """The config file read again and its pipeline; None (logged, the old config kept) on any problem."""
        try:
            new = load_config(self.config_path)
            if database_url(new) != database_url(self.config) or new.cluster.enabled != self.config.cluster.enabled:
                raise ConfigError(f"{self.config_path}: storage and cluster.enabled cannot change on reload; "
                                  "restart instead")
            return new, Pipeline(new, self.db, clock=self.clock, metrics=self.metrics,
                                 evaluate=not new.cluster.enabled)
        except Exception as exc:  # noqa: BLE001 - a bad reload must never take the daemon down
            log.error("[stage=reload] keeping the old config: %s", str(exc).replace("\n", "; "))
            return None

    # -- foreground --------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def run_until_signalled(self) -> bool:
        """Run in the foreground until SIGINT/SIGTERM; SIGHUP reloads. True on a clean stop."""
        def on_stop(signum, _frame):
            log.info("[stage=stop] %s received, shutting down", signal.Signals(signum).name)
            self._stop.set()

        def on_hup(_signum, _frame):
            self._reload_requested.set()

        handlers = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop, signal.SIGHUP: on_hup}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            self.start()
            while not self._stop.wait(0.5):
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        clean = self.stop()
        if not clean and self._inflight:
            # A job that outlived the grace period runs on a scheduler thread the interpreter would
            # wait for at exit (forever, if it hangs): the process ends here, as systemd would end it.
            log.error("[stage=stop] %d job(s) still running after the grace period; exiting without them",
                      self._inflight)
            logging.shutdown()
            os._exit(1)
        return clean


def daemon_class(config) -> type[Daemon]:
    """The single daemon, or a node of a cluster when ``cluster.enabled`` (README "Running several daemons")."""
    if config.cluster.enabled:
        from monitor.app.cluster.daemon import ClusterDaemon

        return ClusterDaemon
    return Daemon
