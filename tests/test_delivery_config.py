"""Delivery settings and wiring: config keys per channel, fallback names checked, routing by
``Alert.channels`` and ``min_severity``, secrets scrubbed from rows and logs, alerts surviving the
database, the migration both ways, and the daemon's delivery job retrying on its own."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr
from sqlalchemy import inspect, select

from alerts.channels.base import Channel, ChannelConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.delivery import alert_from_json, alert_to_json
from alerts.incidents import IncidentManager
from alerts.notify import Notifier
from monitor.core.severity import Severity
from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.core.errors import ConfigError
from monitor.storage.models import DeliveryRow, IncidentEventRow, NotificationRow
from tests.factories import T0, make_alert, make_match, make_mention
from tests.servers import LocalServer, Response

NOW = T0 + timedelta(seconds=30)

CHANNELS = """
channels:
  - name: 钉钉值班群
    type: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=abc
    secret: SECxyz
    at_mobiles: ["13800000000"]
    fallback: 值班邮箱
  - name: 企业微信群
    type: wecom
    url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k
    rate_limit: {messages: 10, per: 1m}
  - name: 飞书群
    type: feishu
    url: https://open.feishu.cn/open-apis/bot/v2/hook/h
    secret: s
    min_severity: III
  - name: slack
    type: slack
    url: https://hooks.slack.com/services/T/B/x
  - name: 值班邮箱
    type: email
    host: smtp.example.com
    username: robot
    password: p
    sender: 舆情哨兵 <alerts@example.com>
    to: [oncall@example.com]
    retry: {attempts: 8, backoff: 1m, factor: 3, max_backoff: 1h}
delivery:
  interval: 2s
"""


def test_every_channel_type_parses_with_its_delivery_settings():
    cfg = parse_config(CHANNELS)
    ding, wecom, feishu, slack, mail = cfg.channels
    assert (ding.fallback, ding.fallback_after, ding.rate_limit.messages, ding.rate_limit.per) == (
        "值班邮箱", 2, 20, timedelta(minutes=1))
    assert (wecom.rate_limit.messages, feishu.rate_limit.messages, slack.rate_limit.per) == (
        10, 100, timedelta(seconds=1))
    assert feishu.min_severity == Severity.III and mail.rate_limit is None
    assert (mail.retry.attempts, mail.retry.delay(3)) == (8, timedelta(minutes=9))
    assert ding.retry.attempts == 5 and ding.retry.delay(1) == timedelta(seconds=30)
    assert (cfg.delivery.interval, cfg.delivery.lease) == (timedelta(seconds=2), timedelta(minutes=2))
    assert "SECxyz" not in repr(ding) and "access_token" not in repr(ding) and "'p'" not in repr(mail)


@pytest.mark.parametrize("fallback,problem", [
    ("短信网关", "config.yaml: channels[0].fallback: unknown channel '短信网关'; known: b"),
    ("a", "config.yaml: channels[0].fallback: unknown channel 'a'; known: b"),  # not itself
])
def test_fallback_must_name_another_channel(fallback, problem):
    text = f"""
channels:
  - {{name: a, type: console, fallback: {fallback}}}
  - {{name: b, type: console}}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.problems == [problem]


@pytest.mark.parametrize("snippet,problem", [
    ("retry: {attempts: 0}", "channels[0].retry.attempts"),
    ("rate_limit: {messages: 0}", "channels[0].rate_limit.messages"),
    ("rate_limit: {messages: 5, per: soon}", "channels[0].rate_limit.per"),
    ("fallback_after: 0", "channels[0].fallback_after"),
])
def test_bad_delivery_settings_name_the_field(snippet, problem):
    with pytest.raises(ConfigError) as info:
        parse_config(f"channels:\n  - {{name: a, type: console, {snippet}}}\n")
    assert [p.split(": ")[1] for p in info.value.problems] == [problem]


# -- routing -------------------------------------------------------------------------------------


@pytest.fixture
def hooks():
    made = []

    def build(server, *names_and_options):
        out = []
        for spec in names_and_options:
            name, options = spec if isinstance(spec, tuple) else (spec, {})
            ch = WebhookChannel(WebhookConfig(name=name, type="webhook", url=f"{server.url}/{name}", **options))
            made.append(ch)
            out.append(ch)
        return out

    yield build
    for ch in made:
        ch.close()


def test_alert_channels_restrict_delivery_and_min_severity_still_applies(db, hooks, caplog):
    [alert] = IncidentManager(db).handle([make_match()], T0)
    with LocalServer(lambda _r: Response(200, b"ok")) as server:
        notifier = Notifier(db, hooks(server, "ops", ("boss", {"min_severity": "II"}), "pr"))
        with caplog.at_level(logging.WARNING, logger="alerts.notify"):
            notifier.deliver([replace(alert, channels=("boss", "pr", "nobody"))], NOW)
        assert [r.path for r in server.requests] == ["/pr"]
        notifier.deliver([replace(alert, channels=("boss",))], NOW)  # IV below boss's min_severity
        notifier.deliver([replace(alert, channels=())], NOW)
        assert len(server.requests) == 1
    unrouted = f"[stage=notify] incident #{alert.incident_id} firing (IV): no channel takes this alert; recorded only"
    assert [r.getMessage() for r in caplog.records] == [
        f"[stage=notify] incident #{alert.incident_id} firing names unknown channel(s) nobody; ignored",
        unrouted, unrouted]
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(select(IncidentEventRow).order_by(IncidentEventRow.id))]
    assert kinds == ["opened", "notified", "not_routed", "not_routed"]


class Leaky(Channel):
    """A badly written third-party channel that puts its token in its exceptions."""

    class Config(ChannelConfig):
        token: SecretStr

    config_model = Config

    def build_payload(self, alert):
        return {}

    def send(self, payload):
        raise RuntimeError(f"POST https://robot.example/send?token={self.config.token.get_secret_value()} failed")


def test_secrets_never_reach_rows_timeline_or_logs(db, caplog):
    token = "tok-0123456789-secret"
    [alert] = IncidentManager(db).handle([make_match()], T0)
    notifier = Notifier(db, [Leaky(Leaky.Config(name="leaky", type="leaky", token=token, retry={"attempts": 1}))])
    with caplog.at_level(logging.DEBUG):
        notifier.deliver([alert], NOW)
    with db.session() as s:
        texts = [n.error for n in s.scalars(select(NotificationRow))]
        texts += [d.last_error for d in s.scalars(select(DeliveryRow))]
        texts += [e.message for e in s.scalars(select(IncidentEventRow))]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert all(token not in t for t in texts)
    assert texts[0] == "unexpected: RuntimeError: POST https://robot.example/send?token=*** failed"
    assert any(t.startswith("通知全部失败，已放弃重试：leaky: unexpected: RuntimeError") for t in texts)


# -- alerts through the database ------------------------------------------------------------------


def test_alert_json_round_trip_keeps_every_field():
    mention = make_mention(id=3, text="投诉", score=0.1, topics=("品牌A", "品牌B"))
    alert = make_alert(kind="reminder", severity=Severity.II, top_mentions=(mention,), channels=("ops",),
                       plan_steps=("1. 核实",), at=datetime(2024, 6, 11, 12, 0, tzinfo=timezone(timedelta(hours=8))))
    data = alert_to_json(alert)
    assert data["severity"] == "II" and data["at"] == "2024-06-11T12:00:00+08:00" and data["channels"] == ["ops"]
    assert alert_from_json(data) == alert
    assert alert_from_json({**data, "field_from_the_future": 1, "channels": None}) == replace(alert, channels=None)


def test_migration_0004_downgrades_and_upgrades(db):
    from alembic import command
    from alembic.config import Config

    from monitor.storage.database import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def run(fn, target):
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            fn(cfg, target)

    run(command.downgrade, "0003")
    tables = set(inspect(db.engine).get_table_names())
    assert not {"pages", "deliveries"} & tables
    assert "delivery_id" not in {c["name"] for c in inspect(db.engine).get_columns("notifications")}
    run(command.upgrade, "head")
    assert {"pages", "deliveries"} <= set(inspect(db.engine).get_table_names())
    assert "delivery_id" in {c["name"] for c in inspect(db.engine).get_columns("notifications")}


# -- the daemon's delivery job ---------------------------------------------------------------------


def test_the_daemon_retries_a_failed_page_on_its_own(db, tmp_path):
    seen = []

    def flaky(req):
        seen.append(req)
        return Response(500, b"down") if len(seen) == 1 else Response(200, b"ok")

    with LocalServer(flaky) as server:
        config = parse_config(f"""
data_dir: {tmp_path}
channels:
  - name: ops
    type: webhook
    url: {server.url}/hook
    retry: {{backoff: 1s}}
delivery:
  interval: 1s
""")
        [alert] = IncidentManager(db).handle([make_match()], T0)
        channel = WebhookChannel(config.channels[0])
        Notifier(db, [channel]).deliver([alert], datetime.now(timezone.utc))  # fails; due again in 1 s
        channel.close()
        assert len(seen) == 1
        daemon = Daemon(config, db=type(db)(db.url))
        daemon.start()
        try:
            deadline = time.monotonic() + 15
            while len(seen) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            assert daemon.stop(grace=timedelta(seconds=5))
    assert len(seen) == 2
    with db.session() as s:
        assert [(n.status, n.attempt) for n in s.scalars(select(NotificationRow).order_by(NotificationRow.id))] == [
            ("failed", 1), ("sent", 2)]
