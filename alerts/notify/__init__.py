"""Deliver alerts through every channel that takes them — persistently, with retries.

``Notifier.deliver(alerts, now)`` runs each alert through the notification stages, in the manner
of Alertmanager's notify pipeline (:mod:`alerts.notify.stage`):

    route → mute → queue → per channel: dedup → rate limit → send (retry, fallback) → settle

route (:class:`RouteStage`): the channels named in ``Alert.channels`` if set, each channel's
``min_severity``; mute (:class:`MuteStage`): active silences (recorded ``silenced``) and quiet hours
(deferred to their end); queue: the page and one delivery per channel are stored
(:mod:`monitor.storage.deliveries`); dedup (:class:`DedupStage`): a channel that already sent this
``dedup_key`` is not sent it again (recorded ``deduplicated``); rate limit: deferred to the next free
slot; send (:class:`SendStage`): the first attempt at once; settle (:class:`SettleStage`): the
page's outcome on the timeline and in the log. ``Notifier.run_due(now)`` — the daemon's delivery job
— runs the attempts that are due through the same stages from mute on: retries after exponential
backoff, sends deferred by a rate limit or quiet hours, and whatever a previous process left pending.

A page is never dropped silently: every attempt is a row in ``notifications``; a channel that stays
down pages its ``fallback`` channel; while no channel has the page the incident timeline says so
(``notify_failed``) and the log shows an ERROR — once when the first attempts all fail, again when
the last retry gives up. Secrets never reach logs or rows: error texts are scrubbed of every
channel's secret values.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Sequence

from alerts.alert import Alert
from alerts.channels.base import Channel
from alerts.delivery import Outcome, alert_from_json
from alerts.escalation import QuietHours
from alerts.notify.send import SendStage, finish
from alerts.notify.settle import SettleStage
from alerts.notify.stage import Context, FanoutStage, MultiStage, log
from alerts.notify.stages import (DedupStage, MuteStage, QueueStage, RateLimitStage, RouteStage,
                                  silence_matches)
from monitor.storage import Database, deliveries
from monitor.storage.deliveries import Job

__all__ = ["DEFAULT_LEASE", "Notifier", "silence_matches"]

DEFAULT_LEASE = timedelta(minutes=2)  # a claimed delivery not finished by then is tried again
# A staged page still not queued after this was left by a process that died (queueing follows the
# incident change within the same job, in well under a second).
ORPHAN_AFTER = timedelta(seconds=15)


class Notifier:
    def __init__(self, db: Database, channels: Sequence[Channel], *, lease: timedelta = DEFAULT_LEASE,
                 quiet_hours: QuietHours | None = None):
        self.db = db
        self.channels = list(channels)
        self.lease = lease
        names = [c.name for c in self.channels]
        self.route = RouteStage(db, self.channels)
        # From mute on, a first attempt and a retry take the same stages.
        self.stages = MultiStage(
            MuteStage(db, quiet_hours),
            QueueStage(db, lease),
            FanoutStage(MultiStage(DedupStage(db), RateLimitStage(db, self.channels),
                                   SendStage(db, self.channels, lease)), names),
        )
        self.settle = SettleStage(db)

    # -- entry points ------------------------------------------------------------------
    def deliver(self, alerts: Sequence[Alert], now: datetime) -> list[int]:
        """Queue and first-attempt each alert; the ids of the pages stored."""
        pages = []
        for alert in alerts:
            ctx = Context(alert, now)
            self._run(ctx, self.route.exec(ctx, [c.name for c in self.channels]))
            if ctx.page_id is not None:
                pages.append(ctx.page_id)
            elif alert.outbox_id is not None:  # routed nowhere or silenced: the staged page goes
                with self.db.session() as s:
                    deliveries.drop_unqueued(s, alert.outbox_id)
        return pages

    def run_due(self, now: datetime) -> int:
        """Attempt every delivery due at ``now``; the number of attempts made. First, pages whose
        process died between staging them and queueing them are queued."""
        with self.db.session() as s:
            orphans = deliveries.claim_orphans(s, now, now - ORPHAN_AFTER)
        for page in orphans:
            try:
                alert = replace(alert_from_json(page.alert), outbox_id=page.id)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("[stage=notify] page #%d cannot be read back (%s); giving it up", page.id, exc)
                continue
            log.warning("[stage=notify] %s #%d was stored but never queued (its daemon stopped); queueing it now",
                        alert.kind, alert.incident_id)
            self.deliver([alert], now)
        with self.db.session() as s:
            jobs = deliveries.claim_due(s, now, now + self.lease)
        by_page: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            by_page[job.page_id].append(job)
        attempts = 0
        for page_id, page_jobs in by_page.items():
            alert = self._read_back(page_id)
            if alert is None:
                outcomes = [self._unreadable(job, now) for job in page_jobs]
            else:
                ctx = Context(alert, now)
                ctx.queued(page_jobs)
                self._run(ctx, [job.channel for job in page_jobs])
                outcomes = ctx.outcomes
            attempts += sum(o.status in ("sent", "failed") for o in outcomes)
        return attempts

    def _run(self, ctx: Context, channels: list[str]) -> None:
        # settle also when a stage held every channel back: it closes the page's outcome
        self.settle.exec(ctx, self.stages.exec(ctx, channels))

    # -- pages that cannot be read back ---------------------------------------------------
    def _read_back(self, page_id: int) -> Alert | None:
        with self.db.session() as s:
            data = deliveries.page(s, page_id).alert
        try:
            return alert_from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("[stage=notify] page #%d cannot be read back (%s); giving it up", page_id, exc)
            return None

    def _unreadable(self, job: Job, now: datetime) -> Outcome:
        # no channel (not even a fallback) could send what cannot be read: each delivery gives up
        outcome = Outcome(job, "failed", job.attempts + 1, "queued alert unreadable")
        return finish(self.db, job, None, outcome, f"page #{job.page_id}", now)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
