"""Channels and message texts: the webhook over real HTTP on 127.0.0.1, the console via capsys."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import traceback

import pytest

from alerts.channels.console import ConsoleChannel, ConsoleConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.message import headline, render_markdown
from monitor.core.severity import Severity
from monitor.core.errors import ChannelError
from tests.factories import make_alert, make_mention
from tests.servers import LocalServer, Request, Response

TOKEN = "SECRET123"
LONG = "这家店的外卖连续三次送错还态度恶劣，投诉电话打不通，平台客服只会复制粘贴同一句话，退款申请一直显示处理中，真的让人非常失望" * 2


def _mentions():
    first = make_mention(id=101, text="产品质量太差了，客服也不理人", score=0.05, author="张三",
                         url="https://weibo.com/123/101", source="weibo")
    second = make_mention(id=None, text=LONG, score=None, author=None, url=None, source="tieba")
    return first, second


def ok(_req: Request) -> Response:
    return Response(200, b'{"ok": true}')


def webhook(url: str, **kw) -> WebhookChannel:
    return WebhookChannel(WebhookConfig(name="ops", type="webhook", url=url, **kw), clock=lambda: 1718078400.9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- message texts ---------------------------------------------------------------------------


def test_firing_markdown_text_is_exact():
    alert = make_alert(top_mentions=_mentions())
    assert headline(alert) == "【舆情告警】一般（IV级） · 「品牌A」负面激增"
    assert render_markdown(alert) == "\n".join([
        "### 【舆情告警】一般（IV级） · 「品牌A」负面激增",
        "",
        "- 事件编号：#7",
        "- 话题：品牌A",
        "- 规则：负面激增",
        "- 时间：2024-06-11 12:00:00（Asia/Shanghai）",
        "- 原因：「品牌A」负面声量激增：近10m负面 12 条（占 80%），基准约 0.33 条，为基准的 36 倍",
        "- 数据：当前窗口负面数 12；当前窗口总量 15；负面占比 0.8；参考窗口负面数 0；基准（折算到当前窗口） 0.33；倍数 36.36",
        "",
        "**代表性负面内容：**",
        "1. 产品质量太差了，客服也不理人（情感 0.05 — 张三） [原文](https://weibo.com/123/101)",
        f"2. {LONG[:60]}…（情感 -）",
        "",
        "确认处理：`monitor incidents ack 7`",
    ])


def test_resolved_text_has_no_evidence_and_no_ack_command():
    alert = make_alert(kind="resolved", severity=Severity.III, reason="「品牌A」负面声量已回落", top_mentions=_mentions())
    text = render_markdown(alert, heading=False)
    assert headline(alert) == "【已恢复】较大（III级） · 「品牌A」负面激增"
    assert text.splitlines()[0] == "- 事件编号：#7"
    assert "- 原因：「品牌A」负面声量已回落" in text
    assert "代表性负面内容" not in text and "ack" not in text and "已恢复" not in text


def test_escalated_headline_and_local_time_zone():
    alert = make_alert(kind="escalated", severity=Severity.I, tz="UTC")
    assert headline(alert) == "【舆情升级】特别重大（I级） · 「品牌A」负面激增"
    assert "- 时间：2024-06-11 04:00:00（UTC）" in render_markdown(alert)


def test_plan_steps_and_other_rules_numbers_are_shown():
    alert = make_alert(kind="reminder", severity=Severity.II, numbers={"current": 9, "threshold": 5, "keyword": "中毒",
                                                                       "window": "10m", "series": [1, 2]},
                       plan_steps=("1. 核实情况（公关专员，12:30前）", "2. 发布致歉声明（品牌经理，14:00前）",
                                   "3. 回访投诉用户（客服主管）", "4. 复盘（总监）"))
    assert render_markdown(alert, heading=False).split("\n\n")[1:] == [
        "**应急预案·待办步骤：**\n1. 核实情况（公关专员，12:30前）\n2. 发布致歉声明（品牌经理，14:00前）\n"
        "3. 回访投诉用户（客服主管）\n完整预案：`monitor incidents show 7`",
        "确认处理：`monitor incidents ack 7`",
    ]
    assert "- 数据：当前值 9；阈值 5；命中词 中毒" in render_markdown(alert)
    assert headline(alert) == "【未确认提醒】重大（II级） · 「品牌A」负面激增"
    assert "应急预案" not in render_markdown(make_alert(kind="resolved", plan_steps=("1. 核实",)))
    assert "- 数据：score_x 1.5" in render_markdown(make_alert(numbers={"score_x": 1.5}))


# -- webhook ---------------------------------------------------------------------------------


def test_webhook_posts_the_documented_json_body():
    alert = make_alert(top_mentions=_mentions())
    with LocalServer(ok) as server:
        channel = webhook(f"{server.url}/hook?access_token={TOKEN}")
        try:
            channel.send(channel.build_payload(alert))
        finally:
            channel.close()

    [req] = server.requests
    assert (req.method, req.path) == ("POST", f"/hook?access_token={TOKEN}")
    assert req.headers["content-type"] == "application/json; charset=utf-8"
    assert req.headers["x-yuqing-event"] == "firing"
    assert "x-yuqing-signature" not in req.headers and "x-yuqing-timestamp" not in req.headers
    assert "品牌A".encode() in req.body  # UTF-8, not \\u escapes
    assert json.loads(req.body) == {
        "version": 1,
        "kind": "firing",
        "incident_id": 7,
        "severity": "IV",
        "severity_label": "一般",
        "topic": "品牌A",
        "rule": "负面激增",
        "title": "【舆情告警】一般（IV级） · 「品牌A」负面激增",
        "reason": "「品牌A」负面声量激增：近10m负面 12 条（占 80%），基准约 0.33 条，为基准的 36 倍",
        "at": "2024-06-11T04:00:00+00:00",
        "numbers": {"current_negative": 12, "current_total": 15, "negative_share": 0.8, "reference_negative": 0,
                    "expected": 0.33, "ratio": 36.36, "window": "10m", "reference": "1h"},
        "top_mentions": [
            {"id": 101, "source": "weibo", "author": "张三", "url": "https://weibo.com/123/101",
             "text": "产品质量太差了，客服也不理人", "score": 0.05},
            {"id": None, "source": "tieba", "author": None, "url": None, "text": LONG, "score": None},
        ],
        "plan_steps": [],
        "text": render_markdown(alert),
        "ack_command": "monitor incidents ack 7",
    }


def test_webhook_signs_timestamp_and_body_with_the_secret():
    with LocalServer(ok) as server:
        channel = webhook(f"{server.url}/hook", secret="s3cret-key")
        try:
            channel.send(channel.build_payload(make_alert(kind="escalated", severity=Severity.II)))
        finally:
            channel.close()

    [req] = server.requests
    assert req.headers["x-yuqing-timestamp"] == "1718078400"
    expected = hmac.new(b"s3cret-key", b"1718078400." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-yuqing-signature"] == f"sha256={expected}"
    assert req.headers["x-yuqing-event"] == "escalated"
    wrong = hmac.new(b"other", b"1718078400." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-yuqing-signature"] != f"sha256={wrong}"


def test_webhook_sends_configured_headers():
    with LocalServer(ok) as server:
        channel = webhook(f"{server.url}/hook", headers={"Authorization": "Bearer abc", "X-Team": "pr-ops"})
        try:
            channel.send(channel.build_payload(make_alert()))
        finally:
            channel.close()

    [req] = server.requests
    assert req.headers["authorization"] == "Bearer abc"
    assert req.headers["x-team"] == "pr-ops"


def test_webhook_http_500_is_a_channel_error_with_status():
    with LocalServer(lambda _r: Response(500, b"boom")) as server:
        channel = webhook(f"{server.url}/hook?access_token={TOKEN}")
        try:
            with pytest.raises(ChannelError) as info:
                channel.send(channel.build_payload(make_alert()))
        finally:
            channel.close()

    assert (info.value.channel, info.value.status, info.value.reason) == ("ops", 500, "HTTP 500 Internal Server Error")
    assert len(server.requests) == 1
    assert TOKEN not in str(info.value)


def _assert_no_token(exc: ChannelError) -> None:
    assert TOKEN not in str(exc)
    assert TOKEN not in exc.reason
    assert TOKEN not in repr(exc)
    assert TOKEN not in "".join(traceback.format_exception(exc))


def test_webhook_connection_refused_does_not_leak_the_url_token():
    url = f"http://127.0.0.1:{free_port()}/hook?access_token={TOKEN}"
    channel = webhook(url)
    try:
        with pytest.raises(ChannelError) as info:
            channel.send(channel.build_payload(make_alert()))
    finally:
        channel.close()

    assert (info.value.channel, info.value.status, info.value.reason) == ("ops", None, "cannot connect: ConnectError")
    _assert_no_token(info.value)


def test_webhook_timeout_does_not_leak_the_url_token():
    with LocalServer(lambda _r: Response(200, b"late", delay=1.0)) as server:
        channel = webhook(f"{server.url}/hook?access_token={TOKEN}", timeout="0.2s")
        try:
            with pytest.raises(ChannelError) as info:
                channel.send(channel.build_payload(make_alert()))
        finally:
            channel.close()

    assert (info.value.channel, info.value.status, info.value.reason) == ("ops", None, "timed out after 0.2s")
    _assert_no_token(info.value)


# -- console ----------------------------------------------------------------------------------


def test_console_payload_has_title_and_markdown():
    channel = ConsoleChannel(ConsoleConfig(name="console", type="console"))
    alert = make_alert(top_mentions=_mentions())
    payload = channel.build_payload(alert)
    assert payload == {
        "title": "【舆情告警】一般（IV级） · 「品牌A」负面激增",
        "markdown": render_markdown(alert, heading=False),
        "style": "cyan",
    }
    assert not payload["markdown"].startswith("###")
    assert channel.build_payload(make_alert(kind="resolved"))["style"] == "green"
    assert channel.build_payload(make_alert(severity=Severity.I))["style"] == "bold white on red"


def test_console_send_writes_the_headline_to_stdout(capsys):
    channel = ConsoleChannel(ConsoleConfig(name="console", type="console", stream="stdout"))
    channel.send(channel.build_payload(make_alert(top_mentions=_mentions())))

    out, err = capsys.readouterr()
    assert "【舆情告警】一般（IV级） · 「品牌A」负面激增" in out
    assert "monitor incidents ack 7" in out
    assert "张三" in out
    assert err == ""


def test_console_stderr_stream(capsys):
    channel = ConsoleChannel(ConsoleConfig(name="console", type="console", stream="stderr"))
    channel.send(channel.build_payload(make_alert(kind="resolved")))

    out, err = capsys.readouterr()
    assert out == ""
    assert "【已恢复】一般（IV级） · 「品牌A」负面激增" in err
