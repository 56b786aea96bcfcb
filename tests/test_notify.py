"""Notifier: delivery bookkeeping with a real database and real channels over 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import replace
from datetime import time, timedelta

import pytest
from sqlalchemy import select

from alerts.alert import Alert
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.escalation import QuietHours
from alerts.incidents import IncidentManager
from alerts.notify import Notifier
from alerts.notify.stage import Context, FanoutStage, MultiStage
from monitor.core.severity import Severity
from monitor.storage.models import DeliveryRow, IncidentEventRow, IncidentRow, NotificationRow, PageRow, SilenceRow
from tests.factories import T0, TOPIC, make_alert, make_match, unstaged
from tests.servers import LocalServer, Response

NOW = T0 + timedelta(seconds=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ok(_req) -> Response:
    return Response(200, b"ok")


def fail(_req) -> Response:
    return Response(500, b"boom")


@pytest.fixture
def channels():
    """channels(name=url, ...) -> WebhookChannel list; closed after the test."""
    made: list[WebhookChannel] = []

    def build(**urls_and_options) -> list[WebhookChannel]:
        out = []
        for name, spec in urls_and_options.items():
            url, options = spec if isinstance(spec, tuple) else (spec, {})
            ch = WebhookChannel(WebhookConfig(name=name, type="webhook", url=url, timeout="2s", **options))
            made.append(ch)
            out.append(ch)
        return out

    yield build
    for ch in made:
        ch.close()


def open_alert(db, severity: Severity = Severity.IV) -> Alert:
    """An open incident's alert, as the notifier's tests vary it (kind, severity): not the page the
    incident change staged, which is dropped here (tests/test_outbox.py covers staging)."""
    [alert] = IncidentManager(db).handle([make_match(severity=severity)], T0)
    return unstaged(db, alert)


def notifications(db) -> list[tuple]:
    with db.session() as s:
        rows = s.scalars(select(NotificationRow).order_by(NotificationRow.id))
        return [(r.incident_id, r.channel, r.alert_kind, r.dedup_key, r.status, r.attempt, r.at, r.error) for r in rows]


def timeline(db, incident_id: int) -> list[IncidentEventRow]:
    with db.session() as s:
        return list(s.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_id == incident_id)
                              .order_by(IncidentEventRow.id)))


def last_notified(db, incident_id: int):
    with db.session() as s:
        return s.get(IncidentRow, incident_id).last_notified_at


def test_successful_delivery_is_recorded_as_sent_and_notified(db, channels):
    alert = open_alert(db)
    with LocalServer(ok) as server:
        Notifier(db, channels(ops=f"{server.url}/hook")).deliver([alert], NOW)

    assert len(server.requests) == 1
    key = f"incident-{alert.incident_id}-firing-IV"
    assert notifications(db) == [(alert.incident_id, "ops", "firing", key, "sent", 1, NOW, None)]
    events = timeline(db, alert.incident_id)
    assert [(e.kind, e.actor, e.message, e.at) for e in events] == [
        ("opened", "system", alert.reason, T0), ("notified", "system", "已通知：ops", NOW)]
    assert events[-1].data == {"alert": "firing", "channels": ["ops"]}
    assert last_notified(db, alert.incident_id) == NOW


def test_one_failing_channel_does_not_stop_the_others(db, channels, caplog):
    alert = open_alert(db)
    with LocalServer(fail) as bad, LocalServer(ok) as good:
        notifier = Notifier(db, channels(broken=f"{bad.url}/hook", ops=f"{good.url}/hook"))
        with caplog.at_level(logging.INFO, logger="alerts.notify"):
            notifier.deliver([alert], NOW)

    assert (len(bad.requests), len(good.requests)) == (1, 1)
    key = f"incident-{alert.incident_id}-firing-IV"
    assert notifications(db) == [
        (alert.incident_id, "broken", "firing", key, "failed", 1, NOW, "HTTP 500 Internal Server Error"),
        (alert.incident_id, "ops", "firing", key, "sent", 1, NOW, None),
    ]
    assert [(e.kind, e.message) for e in timeline(db, alert.incident_id)][1:] == [("notified", "已通知：ops")]
    # The failure is retried (default backoff 30 s), so it is a warning, not yet an error.
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"[channel=broken stage=notify] incident #{alert.incident_id} firing not delivered (attempt 1/5): "
        "HTTP 500 Internal Server Error; retrying at 2024-06-11T04:01:00+00:00"]


def test_all_channels_failing_is_an_incident_event_and_an_error_log(db, channels, caplog):
    alert = open_alert(db)
    with LocalServer(fail) as bad:
        refused_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        notifier = Notifier(db, channels(broken=f"{bad.url}/hook", gone=f"{refused_url}/hook"))
        with caplog.at_level(logging.ERROR, logger="alerts.notify"):
            notifier.deliver([alert], NOW)

    assert [(r[1], r[4], r[7]) for r in notifications(db)] == [
        ("broken", "failed", "HTTP 500 Internal Server Error"),
        ("gone", "failed", "cannot connect: ConnectError"),
    ]
    events = timeline(db, alert.incident_id)
    assert [(e.kind, e.actor) for e in events] == [("opened", "system"), ("notify_failed", "system")]
    assert events[-1].message == ("通知全部失败（将自动重试）：broken: HTTP 500 Internal Server Error; "
                                  "gone: cannot connect: ConnectError")
    assert events[-1].data == {"alert": "firing", "final": False, "retry_at": (NOW + timedelta(seconds=30)).isoformat()}
    assert last_notified(db, alert.incident_id) is None
    summary = [r for r in caplog.records if r.levelno == logging.ERROR and "reached NO channel" in r.getMessage()]
    assert len(summary) == 1
    assert summary[0].name == "alerts.notify"
    assert f"incident #{alert.incident_id} firing reached NO channel" in summary[0].getMessage()


def _silence(db, matcher: dict, starts, ends, reason="发布会期间") -> int:
    with db.session() as s:
        row = SilenceRow(matcher=matcher, starts_at=starts, ends_at=ends, reason=reason, created_by="alice",
                         created_at=starts)
        s.add(row)
        s.flush()
        return row.id


def test_active_silence_on_the_topic_suppresses_delivery(db, channels):
    alert = open_alert(db)
    silence_id = _silence(db, {"topic": TOPIC}, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    with LocalServer(ok) as one, LocalServer(ok) as two:
        Notifier(db, channels(ops=f"{one.url}/hook", pr=f"{two.url}/hook")).deliver([alert], NOW)

    assert (one.requests, two.requests) == ([], [])
    assert [(r[1], r[4], r[7]) for r in notifications(db)] == [
        ("ops", "silenced", f"silence #{silence_id}: 发布会期间"),
        ("pr", "silenced", f"silence #{silence_id}: 发布会期间"),
    ]
    events = timeline(db, alert.incident_id)
    assert [(e.kind, e.message) for e in events][1:] == [("silenced", f"通知被静默：silence #{silence_id}: 发布会期间")]
    assert last_notified(db, alert.incident_id) is None


def test_expired_or_non_matching_silences_do_not_suppress(db, channels):
    alert = open_alert(db)
    _silence(db, {"topic": "别的话题"}, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    _silence(db, {"topic": TOPIC}, NOW - timedelta(hours=2), NOW)  # ended exactly now
    _silence(db, {"topic": TOPIC}, NOW + timedelta(seconds=1), NOW + timedelta(hours=1))  # not yet
    _silence(db, {"topic": TOPIC, "severity": "I"}, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    with LocalServer(ok) as server:
        Notifier(db, channels(ops=f"{server.url}/hook")).deliver([alert], NOW)

    assert len(server.requests) == 1
    assert [r[4] for r in notifications(db)] == ["sent"]


def test_channel_min_severity_filters_lower_alerts(db, channels):
    low = open_alert(db, Severity.IV)
    with LocalServer(ok) as everything, LocalServer(ok) as serious_only:
        notifier = Notifier(db, channels(ops=f"{everything.url}/hook",
                                         boss=(f"{serious_only.url}/hook", {"min_severity": "II"})))
        notifier.deliver([low], NOW)
        assert (len(everything.requests), len(serious_only.requests)) == (1, 0)
        assert [(r[1], r[4]) for r in notifications(db)] == [("ops", "sent")]

        [escalated] = IncidentManager(db).handle([make_match(severity=Severity.II)], NOW)
        notifier.deliver([escalated], NOW + timedelta(seconds=1))
        assert (len(everything.requests), len(serious_only.requests)) == (2, 1)

    assert [(r[1], r[2], r[3], r[4]) for r in notifications(db)] == [
        ("ops", "firing", f"incident-{low.incident_id}-firing-IV", "sent"),
        ("ops", "escalated", f"incident-{low.incident_id}-escalated-II", "sent"),
        ("boss", "escalated", f"incident-{low.incident_id}-escalated-II", "sent"),
    ]


@pytest.mark.parametrize("matcher", [{}, {"topics": TOPIC}, {"topic": TOPIC, "colour": "red"}])
def test_empty_or_misspelt_silence_never_silences(db, channels, matcher):
    alert = open_alert(db)
    _silence(db, matcher, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    with LocalServer(ok) as server:
        Notifier(db, channels(ops=f"{server.url}/hook")).deliver([alert], NOW)
    assert len(server.requests) == 1
    assert [r[4] for r in notifications(db)] == ["sent"]


def test_alert_no_channel_takes_is_recorded_not_reported_as_failure(db, channels, caplog):
    alert = open_alert(db, Severity.IV)
    with LocalServer(ok) as serious_only, caplog.at_level(logging.WARNING, logger="alerts.notify"):
        Notifier(db, channels(boss=(f"{serious_only.url}/hook", {"min_severity": "II"}))).deliver([alert], NOW)
    assert serious_only.requests == [] and notifications(db) == []
    kinds = [(e.kind, e.message) for e in timeline(db, alert.incident_id)][1:]
    assert kinds == [("not_routed", "未通知：没有渠道接收一般（IV级）告警")]
    assert [r.levelname for r in caplog.records] == ["WARNING"]


# -- the stages ----------------------------------------------------------------------------------


def pages_and_deliveries(db) -> tuple[list[str], list[tuple]]:
    with db.session() as s:
        pages = [p.status for p in s.scalars(select(PageRow).order_by(PageRow.id))]
        rows = [(d.channel, d.status, d.attempts, d.next_attempt_at)
                for d in s.scalars(select(DeliveryRow).order_by(DeliveryRow.id))]
    return pages, rows


class Pass:
    """A stage that keeps the channels ``keep`` names and notes what it saw."""

    def __init__(self, keep=None):
        self.keep, self.seen = keep, []

    def exec(self, ctx, channels):
        self.seen.append(list(channels))
        return [c for c in channels if self.keep is None or c in self.keep]


def test_multi_stage_stops_once_a_stage_leaves_no_channel():
    first, nothing, never = Pass(), Pass(keep=()), Pass()
    ctx = Context(make_alert(), NOW)
    assert MultiStage(first, nothing, never).exec(ctx, ["a", "b"]) == []
    assert (first.seen, nothing.seen, never.seen) == ([["a", "b"]], [["a", "b"]], [])
    assert MultiStage(Pass(keep=("b",)), Pass()).exec(ctx, ["a", "b"]) == ["b"]


def test_fanout_runs_each_channel_alone_then_the_fallbacks_added_meanwhile():
    class Falls(Pass):
        def exec(self, ctx, channels):
            if channels == ["a"]:
                ctx.fallbacks.append("c")
            return super().exec(ctx, channels)

    stage = Falls(keep=("b", "c"))
    assert FanoutStage(stage, ["a", "b", "c"]).exec(Context(make_alert(), NOW), ["a", "b"]) == ["b", "c"]
    assert stage.seen == [["a"], ["b"], ["c"]]


def test_a_retry_of_a_page_silenced_since_is_recorded_silenced_and_not_sent(db, channels, caplog):
    alert = open_alert(db)
    with LocalServer(fail) as server:
        notifier = Notifier(db, channels(ops=f"{server.url}/hook"))
        notifier.deliver([alert], NOW)
        silence_id = _silence(db, {"topic": TOPIC}, NOW + timedelta(seconds=10), NOW + timedelta(hours=1))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="alerts.notify"):
            assert notifier.run_due(NOW + timedelta(seconds=30)) == 0
            assert notifier.run_due(NOW + timedelta(hours=2)) == 0  # over for good, even after the silence
    assert len(server.requests) == 1
    reason = f"silence #{silence_id}: 发布会期间"
    assert [(r[1], r[4], r[5], r[7]) for r in notifications(db)] == [
        ("ops", "failed", 1, "HTTP 500 Internal Server Error"), ("ops", "silenced", 0, reason)]
    assert pages_and_deliveries(db) == (["silenced"], [("ops", "silenced", 1, None)])
    assert [e.kind for e in timeline(db, alert.incident_id)][1:] == ["notify_failed", "silenced"]
    assert [r.getMessage() for r in caplog.records] == [
        f"[stage=notify] incident #{alert.incident_id} firing silenced by {reason}"]


def test_a_retry_in_quiet_hours_waits_for_their_end(db, channels):
    alert = open_alert(db)  # IV, at 12:00 in Shanghai
    quiet = QuietHours(start=time(12, 1), end=time(13, 0), min_severity=Severity.II)
    end = T0 + timedelta(hours=1)  # 13:00 in Shanghai
    with LocalServer(fail) as server:
        notifier = Notifier(db, channels(ops=f"{server.url}/hook"), quiet_hours=quiet)
        notifier.deliver([alert], NOW)  # 12:00:30: fails, retry due at 12:01 — in quiet hours
        server.handler = ok
        assert notifier.run_due(NOW + timedelta(seconds=30)) == 0
        assert pages_and_deliveries(db) == (["pending"], [("ops", "pending", 1, end)])
        assert notifier.run_due(end - timedelta(seconds=1)) == 0
        assert notifier.run_due(end) == 1
    assert len(server.requests) == 2
    assert [(e.kind, e.message) for e in timeline(db, alert.incident_id)][1:] == [
        ("notify_failed", "通知全部失败（将自动重试）：ops: HTTP 500 Internal Server Error"),
        ("quiet_hours", "静默时段，一般（IV级）通知推迟至 13:00"),
        ("notified", "已通知：ops（第2次尝试）"),
    ]


def test_quiet_hours_hold_a_first_attempt_too_but_not_serious_pages(db, channels):
    alert = open_alert(db)
    quiet = QuietHours(start=time(12, 0), end=time(13, 0), min_severity=Severity.II)
    end = T0 + timedelta(hours=1)
    with LocalServer(ok) as server:
        notifier = Notifier(db, channels(ops=f"{server.url}/hook"), quiet_hours=quiet)
        [held] = notifier.deliver([replace(alert, kind="resolved")], NOW)
        notifier.deliver([replace(alert, severity=Severity.II, kind="escalated")], NOW)
        assert len(server.requests) == 1  # the II page
        assert pages_and_deliveries(db)[1][0] == ("ops", "pending", 0, end)
        assert notifier.run_due(end) == 1
    assert [json.loads(r.body)["kind"] for r in server.requests] == ["escalated", "resolved"]
    assert pages_and_deliveries(db)[0] == ["delivered", "delivered"]


def test_a_page_a_channel_already_sent_is_not_sent_again(db, channels, caplog):
    alert = open_alert(db)
    with LocalServer(ok) as good, LocalServer(fail) as bad:
        notifier = Notifier(db, channels(ops=f"{good.url}/hook", broken=f"{bad.url}/hook"))
        notifier.deliver([alert], NOW)
        with caplog.at_level(logging.INFO, logger="alerts.notify"):
            notifier.deliver([alert], NOW + timedelta(seconds=5))  # the same page again (a duplicate)
        assert (len(good.requests), len(bad.requests)) == (1, 2)  # broken never had it: tried again
        assert notifier.run_due(NOW + timedelta(hours=1)) == 2  # only broken's retries
        assert len(good.requests) == 1
    key = f"incident-{alert.incident_id}-firing-IV"
    [first_sent] = [i for i, r in enumerate(notifications(db), 1) if r[4] == "sent"]
    assert [(r[1], r[3], r[4], r[5], r[7]) for r in notifications(db)][2:4] == [
        ("ops", key, "deduplicated", 0, f"already sent (notification #{first_sent})"),
        ("broken", key, "failed", 1, "HTTP 500 Internal Server Error")]
    assert pages_and_deliveries(db)[0] == ["delivered", "delivered"]
    events = [(e.kind, e.message) for e in timeline(db, alert.incident_id)]
    assert events[1:3] == [("notified", "已通知：ops"), ("notify_deduplicated", "未重复发送：ops 已收到过此通知")]
    assert f"[channel=ops stage=notify] incident #{alert.incident_id} firing already sent " \
           f"(notification #{first_sent}); not sent again" in [r.getMessage() for r in caplog.records]
