"""Deliver alerts through every channel that accepts them, recording every attempt.

A page is never dropped silently: each attempt is a row in ``notifications``;
if every channel fails, the incident timeline says so and the log shows an error.
Active silences (matching topic / rule / severity) suppress delivery, recorded
as ``silenced``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Sequence

from sqlalchemy import select

from alerts.alert import Alert
from alerts.channels.base import Channel
from alerts.incidents import add_event
from monitor.errors import ChannelError
from monitor.storage import Database
from monitor.storage.models import IncidentRow, NotificationRow, SilenceRow

log = logging.getLogger(__name__)


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


class Notifier:
    def __init__(self, db: Database, channels: Sequence[Channel]):
        self.db = db
        self.channels = list(channels)

    def _silenced_by(self, alert: Alert, now: datetime) -> SilenceRow | None:
        with self.db.session() as s:
            rows = s.scalars(select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now))
            return next((r for r in rows if silence_matches(r.matcher, alert)), None)

    def deliver(self, alerts: Sequence[Alert], now: datetime) -> None:
        for alert in alerts:
            self._deliver_one(alert, now)

    def _deliver_one(self, alert: Alert, now: datetime) -> None:
        silence = self._silenced_by(alert, now)
        targets = [c for c in self.channels if c.accepts(alert)]
        if not targets:
            log.warning("[stage=notify] incident #%d %s (%s): no channel takes this severity; recorded only",
                        alert.incident_id, alert.kind, alert.severity.value)
            with self.db.session() as s:
                incident = s.get(IncidentRow, alert.incident_id)
                if incident is not None:
                    add_event(s, incident, now, "not_routed", "system",
                              f"未通知：没有渠道接收{alert.severity.display}告警", {"alert": alert.kind})
            return
        results: list[tuple[str, str, str | None]] = []  # (channel, status, error)
        for channel in targets:
            if silence is not None:
                results.append((channel.name, "silenced", f"silence #{silence.id}: {silence.reason}"))
                continue
            try:
                channel.send(channel.build_payload(alert))
            except ChannelError as exc:
                log.error("[channel=%s stage=notify] incident #%d %s not delivered: %s",
                          channel.name, alert.incident_id, alert.kind, exc.reason)
                results.append((channel.name, "failed", exc.reason))
            except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the others
                log.exception("[channel=%s stage=notify] unexpected failure", channel.name)
                results.append((channel.name, "failed", f"unexpected: {exc.__class__.__name__}: {exc}"))
            else:
                log.info("[channel=%s stage=notify] incident #%d %s sent", channel.name, alert.incident_id, alert.kind)
                results.append((channel.name, "sent", None))
        self._record(alert, now, results)

    def _record(self, alert: Alert, now: datetime, results: list[tuple[str, str, str | None]]) -> None:
        with self.db.session() as s:
            for channel, status, error in results:
                s.add(NotificationRow(incident_id=alert.incident_id, channel=channel, alert_kind=alert.kind,
                                      dedup_key=alert.dedup_key, status=status, attempt=1, at=now, error=error))
            incident = s.get(IncidentRow, alert.incident_id)
            if incident is None:
                return
            sent = [c for c, status, _ in results if status == "sent"]
            if sent:
                incident.last_notified_at = now
                add_event(s, incident, now, "notified", "system", f"已通知：{'、'.join(sent)}",
                          {"alert": alert.kind, "channels": sent})
            elif any(status == "silenced" for _, status, _ in results):
                add_event(s, incident, now, "silenced", "system", f"通知被静默：{results[0][2]}", {"alert": alert.kind})
            else:
                failed = "; ".join(f"{c}: {e}" for c, _, e in results)
                log.error("[stage=notify] incident #%d %s reached NO channel: %s", alert.incident_id, alert.kind, failed)
                add_event(s, incident, now, "notify_failed", "system", f"通知全部失败：{failed}", {"alert": alert.kind})
