"""The send stage: one attempt per channel, its retry scheduled by the channel's backoff, and the
fallback channel paged when a channel stays down."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from alerts.channels.base import Channel
from alerts.delivery import Outcome
from alerts.notify.stage import Context, log
from monitor.core.errors import ChannelError
from monitor.storage import Database, deliveries, timeline
from monitor.storage.deliveries import Job


def finish(db: Database, job: Job, channel: Channel | None, outcome: Outcome, what: str, now: datetime) -> Outcome:
    """Record an attempt (notification log, delivery state) and log it."""
    with db.session() as s:
        deliveries.record_attempt(s, job, status=outcome.status, attempt=outcome.attempt, error=outcome.error,
                                  retry_at=outcome.retry_at, now=now)
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


class SendStage:
    """Send through each channel; a failure is retried after the channel's backoff until its attempts
    are used up, and after ``fallback_after`` failures the ``fallback`` channel is queued as well (the
    fan-out runs it). Error texts are scrubbed of every channel's secret values."""

    def __init__(self, db: Database, channels: Sequence[Channel], lease: timedelta):
        self.db = db
        self.lease = lease
        self._by_name = {c.name: c for c in channels}
        self._secrets = sorted({v for c in channels for v in c.secret_values() if len(v) >= 4},
                               key=len, reverse=True)

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        sent = []
        for name in channels:
            outcome = self._attempt(ctx, ctx.jobs[name])
            ctx.outcomes.append(outcome)
            if outcome.status == "sent":
                sent.append(name)
            else:
                self._fallback(ctx, outcome)
        return sent

    def _attempt(self, ctx: Context, job: Job) -> Outcome:
        channel = self._by_name.get(job.channel)
        if channel is None:
            return finish(self.db, job, None, Outcome(job, "failed", job.attempts + 1, "channel no longer configured"),
                          ctx.what, ctx.now)
        attempt = job.attempts + 1
        try:
            channel.send(channel.build_payload(ctx.alert))
        except ChannelError as exc:
            error = self.redact(exc.reason)
        except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the others
            error = self.redact(f"unexpected: {exc.__class__.__name__}: {exc}")
            log.error("[channel=%s stage=notify] unexpected failure: %s", channel.name, error)
        else:
            return finish(self.db, job, channel, Outcome(job, "sent", attempt), ctx.what, ctx.now)
        retry = channel.config.retry
        retry_at = ctx.now + retry.delay(attempt) if attempt < retry.attempts else None
        return finish(self.db, job, channel, Outcome(job, "failed", attempt, error, retry_at), ctx.what, ctx.now)

    def _fallback(self, ctx: Context, outcome: Outcome) -> None:
        job = outcome.job
        channel = self._by_name.get(job.channel)
        if channel is None or channel.config.fallback is None:
            return
        cfg = channel.config
        if outcome.attempt != min(cfg.fallback_after, cfg.retry.attempts):
            return
        if cfg.fallback not in self._by_name:
            log.error("[channel=%s stage=notify] fallback channel %r is not configured", job.channel, cfg.fallback)
            return
        with self.db.session() as s:
            fallback = deliveries.add_fallback(s, job.page_id, cfg.fallback, job.channel, ctx.now, ctx.now + self.lease)
            if fallback is None:
                return
            timeline.add_event_if_exists(s, ctx.alert.incident_id, ctx.now, "notify_fallback", "system",
                                         f"{job.channel} 连续 {outcome.attempt} 次发送失败，改用备用渠道 {cfg.fallback}",
                                         {"channel": job.channel, "fallback": cfg.fallback})
        log.warning("[channel=%s stage=notify] down after %d failed attempts; paging fallback channel %s",
                    job.channel, outcome.attempt, cfg.fallback)
        ctx.queued([fallback])
        ctx.fallbacks.append(fallback.channel)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
