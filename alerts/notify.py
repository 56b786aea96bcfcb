"""Deliver alerts through every channel that takes them — persistently, with retries.

``Notifier.deliver(alerts, now)`` routes each alert (the channels named in
``Alert.channels`` if set, each channel's ``min_severity``), applies silences,
stores the page and one delivery per channel (:mod:`alerts.delivery`) and makes
the first attempts at once. ``Notifier.run_due(now)`` — the daemon's delivery
job — makes the attempts that are due: retries after exponential backoff,
sends deferred by a rate limit, and whatever a previous process left pending.

A page is never dropped silently: every attempt is a row in ``notifications``;
a channel that stays down pages its ``fallback`` channel; while no channel
has the page the incident timeline says so (``notify_failed``) and the log
shows an ERROR — once when the first attempts all fail, again when the last
retry gives up. Active silences (matching topic / rule / severity) suppress
delivery, recorded as ``silenced``. Secrets never reach logs or rows: error
texts are scrubbed of every channel's secret values.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import select

from alerts import delivery as queue
from alerts.alert import Alert
from alerts.channels.base import Channel
from alerts.delivery import Job, Outcome
from alerts.incident_desk import add_event
from monitor.core.configtypes import format_duration
from monitor.core.errors import ChannelError
from monitor.storage import Database
from monitor.storage.models import DeliveryRow, IncidentRow, NotificationRow, PageRow, SilenceRow

log = logging.getLogger(__name__)

SILENCE_KEYS = {"topic", "rule", "severity"}
DEFAULT_LEASE = timedelta(minutes=2)  # a claimed delivery not finished by then is tried again


def silence_matches(matcher: dict, alert: Alert) -> bool:
    """True when every key of ``matcher`` equals the alert's value.

    An empty matcher or one with an unknown key matches nothing: a typo must
    lead to a page, never to silence.
    """
    if not matcher or not set(matcher) <= SILENCE_KEYS:
        return False
    values = {"topic": alert.topic, "rule": alert.rule, "severity": alert.severity.value}
    return all(values[key] == str(value) for key, value in matcher.items())


class Notifier:
    def __init__(self, db: Database, channels: Sequence[Channel], *, lease: timedelta = DEFAULT_LEASE):
        self.db = db
        self.channels = list(channels)
        self.lease = lease
        self._by_name = {c.name: c for c in self.channels}
        self._locks = {c.name: threading.Lock() for c in self.channels}  # one send per channel at a time
        self._secrets = sorted({v for c in self.channels for v in c.secret_values() if len(v) >= 4},
                               key=len, reverse=True)

    # -- entry points ------------------------------------------------------------------
    def deliver(self, alerts: Sequence[Alert], now: datetime) -> list[int]:
        """Queue and first-attempt each alert; the ids of the pages stored."""
        pages = []
        for alert in alerts:
            page = self._deliver_one(alert, now)
            if page is not None:
                pages.append(page)
        return pages

    def run_due(self, now: datetime) -> int:
        """Attempt every delivery due at ``now``; the number of attempts made."""
        with self.db.session() as s:
            jobs = queue.claim_due(s, now, now + self.lease)
        by_page: dict[int, list[Job]] = {}
        for job in jobs:
            by_page.setdefault(job.page_id, []).append(job)
        attempts = 0
        for page_id, page_jobs in by_page.items():
            with self.db.session() as s:
                data = s.get(PageRow, page_id).alert
            try:
                alert = queue.alert_from_json(data)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("[stage=notify] page #%d cannot be read back (%s); giving it up", page_id, exc)
                alert = None
            outcomes = self._attempt_all(page_id, alert, page_jobs, now)
            attempts += sum(o.status != "deferred" for o in outcomes)
        return attempts

    # -- routing ------------------------------------------------------------------------
    def _route(self, alert: Alert) -> list[Channel]:
        candidates = self.channels
        if alert.channels is not None:
            unknown = [n for n in alert.channels if n not in self._by_name]
            if unknown:
                log.warning("[stage=notify] incident #%d %s names unknown channel(s) %s; ignored",
                            alert.incident_id, alert.kind, ", ".join(unknown))
            candidates = [c for c in self.channels if c.name in alert.channels]
        return [c for c in candidates if c.accepts(alert)]

    def _silenced_by(self, alert: Alert, now: datetime) -> SilenceRow | None:
        with self.db.session() as s:
            rows = s.scalars(select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now))
            return next((r for r in rows if silence_matches(r.matcher, alert)), None)

    def _deliver_one(self, alert: Alert, now: datetime) -> int | None:
        targets = self._route(alert)
        if not targets:
            log.warning("[stage=notify] incident #%d %s (%s): no channel takes this alert; recorded only",
                        alert.incident_id, alert.kind, alert.severity.value)
            self._event(alert.incident_id, now, "not_routed",
                        f"未通知：没有渠道接收{alert.severity.display}告警", {"alert": alert.kind})
            return None
        silence = self._silenced_by(alert, now)
        if silence is not None:
            reason = f"silence #{silence.id}: {silence.reason}"
            with self.db.session() as s:
                for channel in targets:
                    s.add(NotificationRow(incident_id=alert.incident_id, channel=channel.name, alert_kind=alert.kind,
                                          dedup_key=alert.dedup_key, status="silenced", attempt=0, at=now,
                                          error=reason))
            log.info("[stage=notify] incident #%d %s silenced by %s", alert.incident_id, alert.kind, reason)
            self._event(alert.incident_id, now, "silenced", f"通知被静默：{reason}", {"alert": alert.kind})
            return None
        with self.db.session() as s:
            jobs = queue.enqueue(s, alert, [c.name for c in targets], now, now + self.lease)
        self._attempt_all(jobs[0].page_id, alert, jobs, now)
        return jobs[0].page_id

    # -- attempts -----------------------------------------------------------------------
    def _attempt_all(self, page_id: int, alert: Alert | None, jobs: list[Job], now: datetime) -> list[Outcome]:
        outcomes: list[Outcome] = []
        work = deque(jobs)
        while work:
            job = work.popleft()
            outcome = self._attempt(job, alert, now)
            outcomes.append(outcome)
            if outcome.status == "failed":
                fallback = self._fallback_for(job, outcome, now)
                if fallback is not None:
                    work.append(fallback)
        if alert is not None:
            self._settle(page_id, alert, outcomes, now)
        return outcomes

    def _attempt(self, job: Job, alert: Alert | None, now: datetime) -> Outcome:
        channel = self._by_name.get(job.channel)
        if channel is None or alert is None:
            error = "channel no longer configured" if channel is None else "queued alert unreadable"
            return self._finish(job, None, Outcome(job, "failed", job.attempts + 1, error), alert, now)
        with self._locks[channel.name]:
            limit = channel.config.rate_limit
            if limit is not None:
                with self.db.session() as s:
                    slot = queue.next_free_slot(s, channel.name, limit, now)
                    if slot is not None:
                        queue.defer(s, job, slot, now)
                if slot is not None:
                    log.warning("[channel=%s stage=notify] rate limit of %d per %s reached; incident #%d %s "
                                "deferred to %s", channel.name, limit.messages, format_duration(limit.per),
                                alert.incident_id, alert.kind, slot.isoformat())
                    return Outcome(job, "deferred", job.attempts, retry_at=slot)
            attempt = job.attempts + 1
            try:
                channel.send(channel.build_payload(alert))
            except ChannelError as exc:
                error = self._redact(exc.reason)
            except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the others
                error = self._redact(f"unexpected: {exc.__class__.__name__}: {exc}")
                log.error("[channel=%s stage=notify] unexpected failure: %s", channel.name, error)
            else:
                return self._finish(job, channel, Outcome(job, "sent", attempt), alert, now)
            retry = channel.config.retry
            retry_at = now + retry.delay(attempt) if attempt < retry.attempts else None
            return self._finish(job, channel, Outcome(job, "failed", attempt, error, retry_at), alert, now)

    def _finish(self, job: Job, channel: Channel | None, outcome: Outcome, alert: Alert | None,
                now: datetime) -> Outcome:
        with self.db.session() as s:
            queue.record_attempt(s, job, s.get(PageRow, job.page_id), outcome, now)
        what = f"incident #{alert.incident_id} {alert.kind}" if alert is not None else f"page #{job.page_id}"
        of = f"{outcome.attempt}/{channel.config.retry.attempts}" if channel is not None else str(outcome.attempt)
        if outcome.status == "sent":
            log.info("[channel=%s stage=notify] %s sent%s", job.channel, what,
                     f" (attempt {outcome.attempt})" if outcome.attempt > 1 else "")
        elif outcome.retry_at is not None:
            log.warning("[channel=%s stage=notify] %s not delivered (attempt %s): %s; retrying at %s",
                        job.channel, what, of, outcome.error, outcome.retry_at.isoformat())
        else:
            log.error("[channel=%s stage=notify] %s not delivered (attempt %s): %s; giving up on this channel",
                      job.channel, what, of, outcome.error)
        return outcome

    def _fallback_for(self, job: Job, outcome: Outcome, now: datetime) -> Job | None:
        channel = self._by_name.get(job.channel)
        if channel is None or channel.config.fallback is None:
            return None
        cfg = channel.config
        if outcome.attempt != min(cfg.fallback_after, cfg.retry.attempts):
            return None
        if cfg.fallback not in self._by_name:
            log.error("[channel=%s stage=notify] fallback channel %r is not configured", job.channel, cfg.fallback)
            return None
        with self.db.session() as s:
            fallback = queue.add_fallback(s, job.page_id, cfg.fallback, job.channel, now, now + self.lease)
            incident_id = s.get(PageRow, job.page_id).incident_id
        if fallback is not None:
            log.warning("[channel=%s stage=notify] down after %d failed attempts; paging fallback channel %s",
                        job.channel, outcome.attempt, cfg.fallback)
            self._event(incident_id, now, "notify_fallback",
                        f"{job.channel} 连续 {outcome.attempt} 次发送失败，改用备用渠道 {cfg.fallback}",
                        {"channel": job.channel, "fallback": cfg.fallback})
        return fallback

    # -- outcome of a page ------------------------------------------------------------------
    def _settle(self, page_id: int, alert: Alert, outcomes: list[Outcome], now: datetime) -> None:
        sent = [o for o in outcomes if o.status == "sent"]
        failed = [o for o in outcomes if o.status == "failed"]
        with self.db.session() as s:
            page = s.get(PageRow, page_id)
            incident = s.get(IncidentRow, page.incident_id) if page.incident_id is not None else None
            if sent:
                recovered = page.status == "pending" and page.alarm_at is not None
                if page.status != "delivered":
                    page.status, page.settled_at = "delivered", now
                if recovered:
                    log.warning("[stage=notify] incident #%d %s delivered after every channel had failed",
                                alert.incident_id, alert.kind)
                if incident is not None:
                    incident.last_notified_at = now
                    add_event(s, incident, now, "notified", "system", "已通知：" + "、".join(o.label for o in sent),
                              {"alert": alert.kind, "channels": [o.job.channel for o in sent]})
            for o in failed:
                if o.gave_up and page.status == "delivered" and incident is not None:
                    add_event(s, incident, now, "notify_gave_up", "system",
                              f"{o.job.channel} 发送失败，已放弃（共 {o.attempt} 次）：{o.error}",
                              {"alert": alert.kind, "channel": o.job.channel})
            if page.status != "pending" or not failed:
                return
            deliveries = list(s.scalars(select(DeliveryRow).where(DeliveryRow.page_id == page_id)
                                        .order_by(DeliveryRow.id)))
            if all(d.status == "failed" for d in deliveries):
                page.status, page.settled_at = "failed", now
                reasons = "; ".join(f"{d.channel}: {d.last_error}" for d in deliveries)
                log.error("[stage=notify] incident #%d %s reached NO channel: %s; every retry is used up",
                          alert.incident_id, alert.kind, reasons)
                if incident is not None:
                    add_event(s, incident, now, "notify_failed", "system", f"通知全部失败，已放弃重试：{reasons}",
                              {"alert": alert.kind, "final": True})
            elif page.alarm_at is None:
                page.alarm_at = now
                retry_at = min(d.next_attempt_at for d in deliveries if d.status == "pending")
                reasons = "; ".join(f"{o.job.channel}: {o.error}" for o in failed)
                log.error("[stage=notify] incident #%d %s reached NO channel: %s; retrying from %s",
                          alert.incident_id, alert.kind, reasons, retry_at.isoformat())
                if incident is not None:
                    add_event(s, incident, now, "notify_failed", "system", f"通知全部失败（将自动重试）：{reasons}",
                              {"alert": alert.kind, "final": False, "retry_at": retry_at.isoformat()})

    # -- helpers ------------------------------------------------------------------------
    def _event(self, incident_id: int | None, now: datetime, kind: str, message: str, data: dict) -> None:
        if incident_id is None:
            return
        with self.db.session() as s:
            incident = s.get(IncidentRow, incident_id)
            if incident is not None:
                add_event(s, incident, now, kind, "system", message, data)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
