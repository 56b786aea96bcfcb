"""The cluster's job queue: procrastinate on the shared PostgreSQL database.

Three tasks, the same job functions the single daemon runs from APScheduler, triggered differently:

- ``poll(source)`` — deferred by the dispatcher with ``lock`` and ``queueing_lock`` ``source:<name>``:
  one poll of a source runs at a time, and one waits at most, whichever node takes it;
- ``dispatch`` — periodic (``cluster.dispatch_every``; procrastinate defers a periodic job once per
  period for the whole cluster): forgets dead nodes and hands back what they held, retries the jobs
  their workers left running, and defers a poll of every due source;
- ``deliver`` — periodic, same cadence: sends due deliveries (claimed ``FOR UPDATE SKIP LOCKED``).

The worker runs in a thread with its own event loop; sync jobs run in that loop's thread pool, sized
to the node's concurrency. procrastinate is imported only here, only when clustering is on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from monitor.storage.jobqueue import conninfo, session_limits

log = logging.getLogger(__name__)
RESTART_AFTER = 2  # seconds before a worker that ended on its own is started again


class Node(Protocol):
    def poll_job(self, source: str) -> None: ...
    def deliver_job(self) -> None: ...
    def plan_dispatch(self) -> list[str]: ...


def schema_sql() -> str:
    from procrastinate.schema import SchemaManager

    return SchemaManager.get_schema()


class JobQueue:
    def __init__(self, node: Node, url: str, *, name: str, concurrency: int, dispatch_s: int,
                 heartbeat_s: float, dead_after_s: float):
        import procrastinate

        self.node = node
        self.name = name
        self.concurrency = concurrency
        self.dead_after_s = dead_after_s
        self.heartbeat_s = heartbeat_s
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(url, max(1, int(heartbeat_s))), min_size=1, max_size=max(4, concurrency // 2),
            configure=session_limits(int(dead_after_s))))
        self._exceptions = procrastinate.exceptions
        every = f"* * * * * */{dispatch_s}"

        @self.app.task(name="poll", pass_context=False)
        def poll(source: str) -> None:
            node.poll_job(source)

        @self.app.periodic(cron=every, periodic_id="dispatch")
        @self.app.task(name="dispatch", queueing_lock="dispatch", pass_context=False)
        async def dispatch(timestamp: int) -> None:
            await self._dispatch()

        @self.app.periodic(cron=every, periodic_id="deliver")
        @self.app.task(name="deliver", queueing_lock="deliver", pass_context=False)
        def deliver(timestamp: int) -> None:
            node.deliver_job()

        self._poll = poll
        self._worker: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping = False
        self.restarts = 0  # workers started again after procrastinate ended one on its own
        self.failed: BaseException | None = None

    # -- the dispatcher ---------------------------------------------------------------------
    async def _dispatch(self) -> None:
        manager = self.app.job_manager
        due = await asyncio.to_thread(self.node.plan_dispatch)
        # jobs left "doing" by a worker that stopped beating (kill -9, cut off) hold their source's
        # lock: run them again (a poll whose period was taken and not finished runs; others skip)
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=self.dead_after_s):
            log.warning("[stage=cluster] job %s #%s was left running by a dead worker; retrying it",
                        job.task_name, job.id)
            await manager.retry_job(job)
        deferred = 0
        for source in due:
            lock = f"source:{source}"
            try:
                await self._poll.configure(lock=lock, queueing_lock=lock).defer_async(source=source)
                deferred += 1
            except self._exceptions.AlreadyEnqueued:
                pass  # another dispatcher (or a retried job) queued it a moment ago
        if deferred:
            log.debug("[stage=cluster] %d source(s) due, queued", deferred)

    # -- the worker thread --------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jobqueue", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self.failed is not None:
            raise self.failed

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_default_executor(ThreadPoolExecutor(self.concurrency + 4, thread_name_prefix="job"))
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start() or logged
            self.failed = exc
            log.exception("[stage=cluster] the job queue worker stopped")
        finally:
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        """Run the worker until stopped. procrastinate ends its worker when a side task fails (its
        LISTEN connection lost in a network partition, say): then it is started again, or this node
        would keep beating while taking no job."""
        from procrastinate.worker import Worker

        while not self._stopping:
            try:
                async with self.app.open_async():
                    self._worker = Worker(self.app, name=self.name, concurrency=self.concurrency, wait=True,
                                          fetch_job_polling_interval=1.0, listen_notify=True,
                                          delete_jobs="successful", install_signal_handlers=False,
                                          update_heartbeat_interval=self.heartbeat_s,
                                          stalled_worker_timeout=self.dead_after_s, shutdown_graceful_timeout=None)
                    self._started.set()
                    await self._worker.run()
                if self._stopping:
                    return
                log.error("[stage=cluster] the job queue worker stopped on its own (lost its database "
                          "connection?); starting it again in %ss", RESTART_AFTER)
            except Exception as exc:  # noqa: BLE001 - a start that fails before any job is reported by start()
                if not self._started.is_set():
                    raise
                log.error("[stage=cluster] the job queue worker failed (%s: %s); starting it again in %ss",
                          exc.__class__.__name__, exc, RESTART_AFTER)
            self.restarts += 1
            await asyncio.sleep(RESTART_AFTER)

    def stop(self, timeout: float) -> bool:
        """Stop taking jobs and wait up to ``timeout`` for the running ones; True if the worker ended."""
        self._stopping = True
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
