"""Delivery: retries with backoff (time passed in, no sleeping), rate limits, fallback, restart and
crash safety, one sender per delivery — with a real database and real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor.storage import deliveries as queue
from alerts.alert import Alert
from alerts.channels.base import Channel, ChannelConfig, RetryPolicy
from alerts.channels.dingtalk import DingTalkChannel, DingTalkConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.incidents import IncidentManager
from alerts.notify import Notifier
from monitor.storage.models import DeliveryRow, IncidentEventRow, IncidentRow, NotificationRow, PageRow
from tests.factories import T0, make_match, make_mention, unstaged
from tests.servers import LocalServer, Response

NOW = T0 + timedelta(seconds=30)
S = timedelta(seconds=1)


class Flaky:
    """A receiver that fails the first ``failures`` requests (HTTP 500), then answers ``ok``."""

    def __init__(self, failures: int = 0, body: bytes = b"ok"):
        self.failures = failures
        self.body = body
        self.seen = 0
        self._lock = threading.Lock()

    def __call__(self, _req) -> Response:
        with self._lock:
            self.seen += 1
            failing = self.seen <= self.failures
        return Response(500, b"boom") if failing else Response(200, self.body)


@pytest.fixture
def made():
    channels: list[Channel] = []
    yield channels
    for ch in channels:
        ch.close()


def hook(made, name: str, url: str, **options) -> WebhookChannel:
    ch = WebhookChannel(WebhookConfig(**{"name": name, "type": "webhook", "url": url, "timeout": "2s", **options}))
    made.append(ch)
    return ch


def open_alert(db, **match) -> Alert:
    [alert] = IncidentManager(db).handle([make_match(**match)], T0)
    return unstaged(db, alert)


def attempts(db) -> list[tuple]:
    with db.session() as s:
        rows = s.scalars(select(NotificationRow).order_by(NotificationRow.id))
        return [(r.channel, r.status, r.attempt, r.at, r.error) for r in rows]


def events(db, incident_id: int) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_id == incident_id)
                         .order_by(IncidentEventRow.id))
        return [(e.kind, e.message) for e in rows]


def deliveries(db) -> list[tuple]:
    with db.session() as s:
        rows = s.scalars(select(DeliveryRow).order_by(DeliveryRow.id))
        return [(d.channel, d.status, d.attempts, d.next_attempt_at, d.fallback_for) for d in rows]


def page_statuses(db) -> list[str]:
    with db.session() as s:
        return [p.status for p in s.scalars(select(PageRow).order_by(PageRow.id))]


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(attempts=8, backoff="30s", factor=2, max_backoff="5m")
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert RetryPolicy().delay(1) == 30 * S and RetryPolicy().attempts == 5


def test_failed_delivery_is_retried_with_backoff_until_it_gets_through(db, made, caplog):
    alert = open_alert(db)
    flaky = Flaky(failures=2)
    with LocalServer(flaky) as server:
        notifier = Notifier(db, [hook(made, "ops", f"{server.url}/hook", retry={"attempts": 4, "backoff": "30s"})])
        with caplog.at_level(logging.INFO, logger="alerts.notify"):
            notifier.deliver([alert], NOW)
            assert deliveries(db) == [("ops", "pending", 1, NOW + 30 * S, None)]
            with db.session() as s:
                assert queue.depths(s) == {"pending": 1, "failed": 0}
            assert notifier.run_due(NOW + 29 * S) == 0  # not due yet: nothing sent
            assert notifier.run_due(NOW + 30 * S) == 1  # 2nd attempt fails: next after 60 s
            assert deliveries(db) == [("ops", "pending", 2, NOW + 90 * S, None)]
            assert notifier.run_due(NOW + 89 * S) == 0
            assert notifier.run_due(NOW + 90 * S) == 1
            assert notifier.run_due(NOW + 900 * S) == 0  # sent: never again

    assert len(server.requests) == 3
    assert [json.loads(r.body)["incident_id"] for r in server.requests] == [alert.incident_id] * 3
    err = "HTTP 500 Internal Server Error"
    assert attempts(db) == [("ops", "failed", 1, NOW, err), ("ops", "failed", 2, NOW + 30 * S, err),
                            ("ops", "sent", 3, NOW + 90 * S, None)]
    assert deliveries(db) == [("ops", "sent", 3, None, None)]
    assert page_statuses(db) == ["delivered"]
    assert events(db, alert.incident_id)[1:] == [
        ("notify_failed", f"通知全部失败（将自动重试）：ops: {err}"),
        ("notified", "已通知：ops（第3次尝试）"),
    ]
    with db.session() as s:
        assert s.get(IncidentRow, alert.incident_id).last_notified_at == NOW + 90 * S
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert [lvl for lvl, _ in levels] == ["WARNING", "ERROR", "WARNING", "WARNING"]
    assert "reached NO channel" in levels[1][1] and "retrying from 2024-06-11T04:01:00+00:00" in levels[1][1]
    assert levels[3][1] == f"[stage=notify] incident #{alert.incident_id} firing delivered after every channel had failed"


def test_all_channels_giving_up_is_on_the_timeline_and_an_error(db, made, caplog):
    alert = open_alert(db)
    with LocalServer(Flaky(failures=99)) as bad, LocalServer(Flaky(failures=99)) as worse:
        notifier = Notifier(db, [hook(made, "a", f"{bad.url}/hook", retry={"attempts": 2, "backoff": "10s"}),
                                 hook(made, "b", f"{worse.url}/hook", retry={"attempts": 3, "backoff": "10s"})])
        with caplog.at_level(logging.WARNING, logger="alerts.notify"):
            notifier.deliver([alert], NOW)
            notifier.run_due(NOW + 10 * S)  # a: 2nd and last attempt; b: 2nd attempt
            assert page_statuses(db) == ["pending"]
            notifier.run_due(NOW + 30 * S)  # b: 3rd and last
            assert notifier.run_due(NOW + 3600 * S) == 0
        assert (len(bad.requests), len(worse.requests)) == (2, 3)

    err = "HTTP 500 Internal Server Error"
    assert page_statuses(db) == ["failed"]
    with db.session() as s:
        assert queue.depths(s) == {"pending": 0, "failed": 2}
    assert [(c, st, n) for c, st, n, _, _ in deliveries(db)] == [("a", "failed", 2), ("b", "failed", 3)]
    assert events(db, alert.incident_id)[1:] == [
        ("notify_failed", f"通知全部失败（将自动重试）：a: {err}; b: {err}"),
        ("notify_failed", f"通知全部失败，已放弃重试：a: {err}; b: {err}"),
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum("reached NO channel" in e for e in errors) == 2
    assert errors[-1].endswith("every retry is used up")
    assert [e for e in errors if "giving up on this channel" in e] == [
        f"[channel=a stage=notify] incident #{alert.incident_id} firing not delivered (attempt 2/2): {err}; "
        "giving up on this channel",
        f"[channel=b stage=notify] incident #{alert.incident_id} firing not delivered (attempt 3/3): {err}; "
        "giving up on this channel",
    ]
    with db.session() as s:
        assert s.get(IncidentRow, alert.incident_id).last_notified_at is None


def test_a_channel_that_stays_down_pages_its_fallback(db, made):
    alert = open_alert(db)
    with LocalServer(Flaky(failures=99)) as down, LocalServer(Flaky()) as sms:
        primary = hook(made, "钉钉", f"{down.url}/hook", fallback="短信网关", fallback_after=2,
                       retry={"attempts": 4, "backoff": "30s"})
        backup = hook(made, "短信网关", f"{sms.url}/hook", min_severity="I")  # only ever paged as the fallback
        notifier = Notifier(db, [primary, backup])
        notifier.deliver([alert], NOW)
        assert sms.requests == []  # one failure is not "down" yet
        notifier.run_due(NOW + 30 * S)  # the second failure pages the fallback at once
        assert len(sms.requests) == 1
        assert json.loads(sms.requests[0].body)["incident_id"] == alert.incident_id
        notifier.run_due(NOW + 90 * S)
        notifier.run_due(NOW + 210 * S)  # the primary's 4th and last attempt
        assert notifier.run_due(NOW + 3600 * S) == 0
        assert (len(down.requests), len(sms.requests)) == (4, 1)

    assert [(c, st, n, f) for c, st, n, _, f in deliveries(db)] == [
        ("钉钉", "failed", 4, None), ("短信网关", "sent", 1, "钉钉")]
    assert [(c, st, n) for c, st, n, _, _ in attempts(db)] == [
        ("钉钉", "failed", 1), ("钉钉", "failed", 2), ("短信网关", "sent", 1), ("钉钉", "failed", 3),
        ("钉钉", "failed", 4)]
    assert page_statuses(db) == ["delivered"]
    err = "HTTP 500 Internal Server Error"
    assert events(db, alert.incident_id)[1:] == [
        ("notify_failed", f"通知全部失败（将自动重试）：钉钉: {err}"),
        ("notify_fallback", "钉钉 连续 2 次发送失败，改用备用渠道 短信网关"),
        ("notified", "已通知：短信网关（备用，替代钉钉）"),
        ("notify_gave_up", f"钉钉 发送失败，已放弃（共 4 次）：{err}"),
    ]


def test_rate_limit_defers_sends_and_holds_across_a_restart(db, made, caplog):
    alert = open_alert(db)
    # 21 distinct pages of one incident (as reminders are): the same page twice would be deduplicated
    pages = [replace(alert, occurrence=f"round-{i}") for i in range(21)]
    ok = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
    with LocalServer(lambda _r: Response(200, ok)) as robot:
        def dingtalk():
            ch = DingTalkChannel(DingTalkConfig(name="钉钉", type="dingtalk", url=f"{robot.url}/robot/send"))
            made.append(ch)
            return ch

        first = Notifier(db, [dingtalk()])
        first.deliver(pages[:10], NOW)
        first.deliver(pages[10:20], NOW + 10 * S)
        assert len(robot.requests) == 20
        restarted = Notifier(db, [dingtalk()])  # counts what the first one sent
        with caplog.at_level(logging.WARNING, logger="alerts.notify"):
            restarted.deliver(pages[20:], NOW + 20 * S)
        assert len(robot.requests) == 20
        assert deliveries(db)[-1] == ("钉钉", "pending", 0, NOW + 60 * S, None)  # when the first 10 age out
        assert restarted.run_due(NOW + 59 * S) == 0
        assert restarted.run_due(NOW + 60 * S) == 1
        assert len(robot.requests) == 21

    assert [r.getMessage() for r in caplog.records] == [
        f"[channel=钉钉 stage=notify] rate limit of 20 per 1m reached; incident #{alert.incident_id} firing "
        "deferred to 2024-06-11T04:01:30+00:00"]
    rows = attempts(db)
    assert len(rows) == 21 and {r[1] for r in rows} == {"sent"} and rows[-1][2:4] == (1, NOW + 60 * S)
    assert events(db, alert.incident_id)[-1] == ("notified", "已通知：钉钉")


def test_pending_deliveries_survive_a_restart(db, made):
    mention = make_mention(id=None, text="喝完拉肚子，投诉！", score=0.03, author="张三", url="https://weibo.com/1/2")
    [alert] = IncidentManager(db).handle([make_match(evidence=(mention,))], T0)
    alert = Alert(**{**alert.__dict__, "plan_steps": ("1. 核实情况（公关专员，12:30前）",)})
    with LocalServer(Flaky(failures=1)) as server:
        before = hook(made, "ops", f"{server.url}/hook")
        Notifier(db, [before]).deliver([alert], NOW)
        # the process stops; a new one with new channel objects takes over the same database
        after = hook(made, "ops", f"{server.url}/hook")
        assert Notifier(db, [after]).run_due(NOW + 30 * S) == 1

    first, second = (json.loads(r.body) for r in server.requests)
    assert second == first == before.build_payload(alert)  # the alert came back whole from the database
    assert second["plan_steps"] == ["1. 核实情况（公关专员，12:30前）"]
    assert second["top_mentions"][0]["text"] == "喝完拉肚子，投诉！"
    assert [(c, st, n) for c, st, n, _, _ in attempts(db)] == [("ops", "failed", 1), ("ops", "sent", 2)]


class Crashing(Channel):
    """A channel whose send never returns: the process is killed in the middle of it."""

    config_model = ChannelConfig

    def build_payload(self, alert):
        return {}

    def send(self, payload):
        raise KeyboardInterrupt


def test_a_crash_in_the_middle_of_a_send_is_retried_after_the_lease(db, made):
    alert = open_alert(db)
    with pytest.raises(KeyboardInterrupt):
        Notifier(db, [Crashing(ChannelConfig(name="ops", type="crashing"))]).deliver([alert], NOW)
    assert deliveries(db) == [("ops", "pending", 0, NOW + 120 * S, None)]  # still claimed by the dead process
    with LocalServer(Flaky()) as server:
        notifier = Notifier(db, [hook(made, "ops", f"{server.url}/hook")])
        assert notifier.run_due(NOW + 119 * S) == 0
        assert notifier.run_due(NOW + 120 * S) == 1
    assert len(server.requests) == 1
    assert [(c, st, n) for c, st, n, _, _ in attempts(db)] == [("ops", "sent", 1)]


def test_two_workers_never_send_the_same_delivery(db, made):
    alert = open_alert(db)
    with LocalServer(Flaky(failures=1)) as server:
        Notifier(db, [hook(made, "ops", f"{server.url}/hook")]).deliver([alert], NOW)
        server.handler = lambda _r: Response(200, b"ok", delay=0.3)  # slow: both workers are busy at once
        workers = [Notifier(db, [hook(made, "ops", f"{server.url}/hook")]) for _ in range(3)]
        start = threading.Barrier(len(workers))
        counts: list[int] = []

        def work(notifier):
            start.wait()
            counts.append(notifier.run_due(NOW + 30 * S))

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert sorted(counts) == [0, 0, 1]
    assert len(server.requests) == 2  # the first (failed) attempt and exactly one retry


def test_a_claim_taken_by_another_worker_is_refused(db, made):
    alert = open_alert(db)
    with LocalServer(Flaky(failures=1)) as server:
        Notifier(db, [hook(made, "ops", f"{server.url}/hook")]).deliver([alert], NOW)
    [(delivery_id,)] = [(d.id,) for d in _rows(db, DeliveryRow)]
    due = NOW + 30 * S
    with db.session() as s:  # both workers saw the delivery as due; the first one takes it
        assert queue.claim(s, delivery_id, due, due + 120 * S) is True
    with db.session() as s:
        assert queue.claim(s, delivery_id, due, due + 120 * S) is False  # the stale second one does not
        assert queue.claim_due(s, due, due + 120 * S) == []
    with db.session() as s:
        assert [j.delivery_id for j in queue.claim_due(s, due + 120 * S, due + 240 * S)] == [delivery_id]


def _rows(db, model) -> list:
    with db.session() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def test_one_slow_channel_is_retried_and_the_other_still_gets_the_page(db, made, caplog):
    alert = open_alert(db)
    with LocalServer(lambda _r: Response(200, b"late", delay=1.0)) as slow, LocalServer(Flaky()) as fast:
        notifier = Notifier(db, [hook(made, "slow", f"{slow.url}/hook", timeout="0.2s"),
                                 hook(made, "fast", f"{fast.url}/hook")])
        notifier.deliver([alert], NOW)
        assert len(fast.requests) == 1
    assert [(c, st, e) for c, st, _, _, e in attempts(db)] == [("slow", "failed", "timed out after 0.2s"),
                                                              ("fast", "sent", None)]
    assert deliveries(db)[0] == ("slow", "pending", 1, NOW + 30 * S, None)
    assert events(db, alert.incident_id)[-1] == ("notified", "已通知：fast")


def test_a_stored_alert_reads_back_equal_mentions_included():
    from alerts.delivery import alert_from_json, alert_to_json
    from tests.factories import make_alert, make_mention

    m = make_mention(text="喝完拉肚子", crisis_words=("拉肚子",), topics=("鲜丰奶茶",))
    alert = make_alert(top_mentions=(m,))
    assert alert_from_json(json.loads(json.dumps(alert_to_json(alert)))) == alert
