"""The stages before a send: route → mute → queue → (per channel) dedup → rate limit.

Each takes a page's :class:`Context` and the channels still in play and returns those that go on;
whatever it holds back it records (notification log, delivery, timeline) and logs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from alerts.alert import Alert
from alerts.channels.base import Channel
from alerts.delivery import Outcome, alert_to_json
from alerts.escalation import QuietHours, quiet_hours_note, quiet_until
from alerts.notify.stage import Context, log
from monitor.core.configtypes import format_duration
from monitor.storage import Database, Session, deliveries, silences, timeline

SILENCE_KEYS = {"topic", "rule", "severity"}


def silence_matches(matcher: dict, alert: Alert) -> bool:
    """True when every key of ``matcher`` equals the alert's value.

    An empty matcher or one with an unknown key matches nothing: a typo must
    lead to a page, never to silence.
    """
    if not matcher or not set(matcher) <= SILENCE_KEYS:
        return False
    values = {"topic": alert.topic, "rule": alert.rule, "severity": alert.severity.value}
    return all(values[key] == str(value) for key, value in matcher.items())


def _event(s: Session, ctx: Context, kind: str, message: str, data: dict) -> None:
    timeline.add_event_if_exists(s, ctx.alert.incident_id, ctx.now, kind, "system", message, data)


def _queue(s: Session, ctx: Context, channels: list[str], due: datetime) -> bool:
    """Store the page with one delivery per channel, due at ``due``; False when the same page is
    already pending (queued by another daemon): that one is delivered, this one is dropped."""
    a = ctx.alert
    if a.outbox_id is not None:  # staged with its incident change
        jobs = deliveries.fill(s, a.outbox_id, alert_to_json(a), channels, ctx.now, due)
    else:
        jobs = deliveries.enqueue(s, incident_id=a.incident_id, alert_kind=a.kind, dedup_key=a.dedup_key,
                                  alert=alert_to_json(a), channels=channels, now=ctx.now, claim_until=due)
    if not jobs:
        log.info("[stage=notify] %s (%s) is already queued; not queued twice", ctx.what, a.dedup_key)
        return False
    ctx.queued(jobs)
    return True


class RouteStage:
    """The channels the alert names (``Alert.channels``; None = every one) that accept it (``min_severity``)."""

    def __init__(self, db: Database, channels: Sequence[Channel]):
        self.db = db
        self._by_name = {c.name: c for c in channels}

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        alert = ctx.alert
        if alert.channels is not None:
            unknown = [n for n in alert.channels if n not in self._by_name]
            if unknown:
                log.warning("[stage=notify] incident #%d %s names unknown channel(s) %s; ignored",
                            alert.incident_id, alert.kind, ", ".join(unknown))
            channels = [n for n in channels if n in alert.channels]
        routed = [n for n in channels if n in self._by_name and self._by_name[n].accepts(alert)]
        if not routed:
            log.warning("[stage=notify] incident #%d %s (%s): no channel takes this alert; recorded only",
                        alert.incident_id, alert.kind, alert.severity.value)
            with self.db.session() as s:
                _event(s, ctx, "not_routed", f"未通知：没有渠道接收{alert.severity.display}告警", {"alert": alert.kind})
        return routed


class MuteStage:
    """Active silences and quiet hours, checked on the first attempt and on every retry.

    Silenced: recorded ``silenced`` per channel and never sent (a page silenced before it is queued
    is not queued). In quiet hours below their ``min_severity``: deferred to their end.
    """

    def __init__(self, db: Database, quiet_hours: QuietHours | None = None):
        self.db = db
        self.quiet_hours = quiet_hours

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        with self.db.session() as s:
            silence = next((x for x in silences.active(s, ctx.now) if silence_matches(x.matcher, ctx.alert)), None)
            if silence is not None:
                self._silence(s, ctx, channels, f"silence #{silence.id}: {silence.reason}")
                return []
            held = quiet_until(ctx.now, ctx.alert.severity, self.quiet_hours, ctx.alert.tz)
            if held is not None:
                self._hold(s, ctx, channels, held)
                return []
        return channels

    @staticmethod
    def _silence(s: Session, ctx: Context, channels: list[str], reason: str) -> None:
        a = ctx.alert
        for name in channels:
            job = ctx.jobs.get(name)
            deliveries.record_skip(s, incident_id=a.incident_id, alert_kind=a.kind, dedup_key=a.dedup_key,
                                   channel=name, status="silenced", reason=reason, now=ctx.now, job=job)
            if job is not None:
                ctx.outcomes.append(Outcome(job, "silenced", job.attempts, reason))
        log.info("[stage=notify] incident #%d %s silenced by %s", a.incident_id, a.kind, reason)
        _event(s, ctx, "silenced", f"通知被静默：{reason}", {"alert": a.kind})

    @staticmethod
    def _hold(s: Session, ctx: Context, channels: list[str], until: datetime) -> None:
        if ctx.page_id is None:
            if not _queue(s, ctx, channels, until):
                return
        else:
            for name in channels:
                deliveries.defer(s, ctx.jobs[name], until, ctx.now)
        ctx.outcomes += [Outcome(ctx.jobs[n], "deferred", ctx.jobs[n].attempts, retry_at=until) for n in channels]
        a = ctx.alert
        log.info("[stage=notify] %s held back by quiet hours until %s", ctx.what, until.isoformat())
        _event(s, ctx, "quiet_hours", quiet_hours_note(a.severity, until, a.tz), {"alert": a.kind})


class QueueStage:
    """Store the page and its deliveries (once), claimed by this worker for ``lease``."""

    def __init__(self, db: Database, lease: timedelta):
        self.db = db
        self.lease = lease

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        if ctx.page_id is None:
            with self.db.session() as s:
                if not _queue(s, ctx, channels, ctx.now + self.lease):
                    return []
        return channels


class DedupStage:
    """A channel whose notification log has this alert's ``dedup_key`` as sent is not sent it again."""

    def __init__(self, db: Database):
        self.db = db

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        a = ctx.alert
        fresh = []
        for name in channels:
            job = ctx.jobs[name]
            with self.db.session() as s:
                earlier = deliveries.sent_before(s, name, a.dedup_key)
                if earlier is None:
                    fresh.append(name)
                    continue
                reason = f"already sent (notification #{earlier})"
                deliveries.record_skip(s, incident_id=a.incident_id, alert_kind=a.kind, dedup_key=a.dedup_key,
                                       channel=name, status="deduplicated", reason=reason, now=ctx.now, job=job)
            log.info("[channel=%s stage=notify] %s %s; not sent again", name, ctx.what, reason)
            ctx.outcomes.append(Outcome(job, "deduplicated", job.attempts, reason))
        return fresh


class RateLimitStage:
    """A channel at its ``rate_limit`` defers the delivery to its next free slot."""

    def __init__(self, db: Database, channels: Sequence[Channel]):
        self.db = db
        self._by_name = {c.name: c for c in channels}

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        free = []
        for name in channels:
            channel = self._by_name.get(name)
            limit = channel.config.rate_limit if channel is not None else None
            if limit is None:
                free.append(name)
                continue
            job = ctx.jobs[name]
            with self.db.session() as s:
                slot = deliveries.next_free_slot(s, name, limit.messages, limit.per, ctx.now)
                if slot is not None:
                    deliveries.defer(s, job, slot, ctx.now)
            if slot is None:
                free.append(name)
                continue
            log.warning("[channel=%s stage=notify] rate limit of %d per %s reached; %s deferred to %s",
                        name, limit.messages, format_duration(limit.per), ctx.what, slot.isoformat())
            ctx.outcomes.append(Outcome(job, "deferred", job.attempts, retry_at=slot))
        return free
