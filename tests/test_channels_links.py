"""One tap from the page: with ``console.public_url`` every channel links to the incident's console page
(buttons on DingTalk, Feishu and Slack; Markdown links on WeCom and in mail; ``console_url`` in the webhook's
JSON; the address as text beside the CLI hint on the terminal). Exact payloads, sent to real receivers on
127.0.0.1; without ``public_url`` every payload is the one of today (pinned here and in the other channel
tests)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from alerts.alert import incident_url
from alerts.channels.console import ConsoleChannel, ConsoleConfig
from alerts.channels.dingtalk import DingTalkChannel, DingTalkConfig
from alerts.channels.email import EmailChannel, EmailConfig
from alerts.channels.feishu import FeishuChannel, FeishuConfig
from alerts.channels.slack import SlackChannel, SlackConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.channels.wecom import MAX_BYTES, WeComChannel, WeComConfig
from alerts.delivery import alert_from_json, alert_to_json
from alerts.incidents import IncidentManager
from alerts.message import render_markdown
from alerts.notify import Notifier
from monitor.app.config import parse_config
from monitor.core.severity import Severity
from tests.factories import T0, make_alert, make_match, make_mention
from tests.servers import LocalServer, Response
from tests.test_channels_email import parsed, smtp_server  # noqa: F401 (smtp_server: a fixture)

PUBLIC = "https://yuqing.example.com"
URL = f"{PUBLIC}/incidents/7"
ACK = f"{URL}?ack=1"
PLAN = ("1. 核实情况，联系当事门店（公关专员，12:30前）",)
HEAD = "【舆情告警】重大（II级） · 「品牌A」负面激增"
FACTS = "\n".join([
    "- 事件编号：#7", "- 话题：品牌A", "- 规则：负面激增", "- 时间：2024-06-11 12:00:00（Asia/Shanghai）",
    "- 原因：「品牌A」负面声量激增：近10m负面 12 条（占 80%），基准约 0.33 条，为基准的 36 倍",
    "- 数据：当前窗口负面数 12；当前窗口总量 15；负面占比 0.8；参考窗口负面数 0；基准（折算到当前窗口） 0.33；倍数 36.36"])
MENTIONS = "**代表性负面内容：**\n1. 喝完拉肚子，投诉（情感 0.05 — 张三） [原文](https://weibo.com/123/101)"
PLAN_BLOCK = "**应急预案·待办步骤：**\n" + PLAN[0] + "\n完整预案：`monitor incidents show 7`"
LINKS = f"[查看详情]({URL})\n确认处理：{ACK}"
CLI_ACK = "确认处理：`monitor incidents ack 7`"
BODY = f"{FACTS}\n\n{MENTIONS}\n\n{PLAN_BLOCK}"  # the message without its actions block


def alert(console_url: str | None = URL, **kw):
    mention = make_mention(id=101, text="喝完拉肚子，投诉", score=0.05, author="张三", url="https://weibo.com/123/101")
    values = {"severity": Severity.II, "top_mentions": (mention,), "plan_steps": PLAN, "console_url": console_url,
              **kw}
    return make_alert(**values)


def resolved(console_url: str | None = URL):
    return make_alert(kind="resolved", severity=Severity.II, reason="「品牌A」负面声量已回落", console_url=console_url)


def received(make, a, answer: bytes = b'{"errcode": 0, "code": 0}', **options) -> dict:
    """The JSON body the channel ``make(url, **options)`` posts for ``a`` to a real receiver (checked to be
    the payload built for it)."""
    with LocalServer(lambda _r: Response(200, answer, {"Content-Type": "application/json"})) as server:
        channel = make(f"{server.url}/hook", **options)
        try:
            payload = channel.build_payload(a)
            channel.send(payload)
        finally:
            channel.close()
    [req] = server.requests
    body = json.loads(req.body)
    assert body == payload
    return body


# -- the links themselves ------------------------------------------------------------------------


def test_links_are_built_from_the_config_and_the_integer_id_only():
    assert incident_url(PUBLIC, 7) == URL
    assert incident_url(PUBLIC + "/", 7) == URL  # however the address was written
    assert incident_url("https://ops.example.com/yuqing", 12) == "https://ops.example.com/yuqing/incidents/12"
    assert incident_url(None, 7) is None and incident_url("", 7) is None
    a = alert()
    assert (a.console_url, a.ack_url) == (URL, ACK)
    assert resolved().ack_url is None  # nothing to acknowledge on 已恢复: the page link only
    assert alert(console_url=None).ack_url is None


def test_the_link_survives_the_pages_json_round_trip():
    a = alert(top_mentions=())
    data = json.loads(json.dumps(alert_to_json(a)))
    assert data["console_url"] == URL
    assert alert_from_json(data) == a
    del data["console_url"]  # a page queued before the console existed
    assert alert_from_json(data) == replace(a, console_url=None)


def test_markdown_ends_with_the_links_and_the_terminal_keeps_the_cli_hint():
    assert render_markdown(alert()) == f"### {HEAD}\n\n{BODY}\n\n{LINKS}"
    assert render_markdown(alert(), heading=False, actions="cli") == f"{BODY}\n\n查看详情：{URL}\n\n{CLI_ACK}"
    assert render_markdown(alert(), actions=None) == f"### {HEAD}\n\n{BODY}"
    assert render_markdown(resolved(), heading=False) == "\n".join([
        *FACTS.splitlines()[:4], "- 原因：「品牌A」负面声量已回落", FACTS.splitlines()[5]]) + f"\n\n[查看详情]({URL})"
    # without a console: the CLI hint, in every mode
    assert render_markdown(alert(None)) == f"### {HEAD}\n\n{BODY}\n\n{CLI_ACK}"
    assert render_markdown(alert(None), actions="cli") == render_markdown(alert(None))


# -- DingTalk: an ActionCard with buttons -------------------------------------------------------------


def dingtalk(url: str = "http://x", **kw) -> DingTalkChannel:
    return DingTalkChannel(DingTalkConfig(name="钉钉值班群", type="dingtalk", url=url, **kw),
                           clock=lambda: 1718078400.0)


def test_dingtalk_page_is_an_action_card_with_view_and_ack_buttons():
    body = received(dingtalk, alert(), at_mobiles=["13800000000"])
    assert body == {
        "msgtype": "actionCard",
        "actionCard": {"title": HEAD, "text": f"### {HEAD}\n\n{BODY}\n\n@13800000000", "btnOrientation": "1",
                       "btns": [{"title": "查看详情", "actionURL": URL}, {"title": "确认处理", "actionURL": ACK}]},
        "at": {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": False},
    }
    card = dingtalk(at_mobiles=["13800000000"]).build_payload(resolved())
    assert card["actionCard"]["btns"] == [{"title": "查看详情", "actionURL": URL}]
    assert card["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}


def test_dingtalk_without_console_is_todays_markdown_message():
    body = received(dingtalk, alert(None), at_mobiles=["13800000000"])
    assert body == {
        "msgtype": "markdown",
        "markdown": {"title": HEAD, "text": f"### {HEAD}\n\n{BODY}\n\n{CLI_ACK}\n\n@13800000000"},
        "at": {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": False},
    }


# -- WeCom: Markdown links ----------------------------------------------------------------------------


def wecom(url: str = "http://x", **kw) -> WeComChannel:
    return WeComChannel(WeComConfig(name="企业微信群", type="wecom", url=url, **kw))


def test_wecom_markdown_ends_with_the_view_link_and_the_ack_address():
    body = received(wecom, alert(), mention_user_ids=["zhangsan"])
    assert body == {"msgtype": "markdown",
                    "markdown": {"content": f"### {HEAD}\n\n{BODY}\n\n{LINKS}\n\n<@zhangsan>"}}
    assert wecom().build_payload(resolved())["markdown"]["content"].endswith(f"倍数 36.36\n\n[查看详情]({URL})")
    assert received(wecom, alert(None), mention_user_ids=["zhangsan"]) == {
        "msgtype": "markdown", "markdown": {"content": f"### {HEAD}\n\n{BODY}\n\n{CLI_ACK}\n\n<@zhangsan>"}}


def test_wecom_cut_to_4096_bytes_keeps_the_links_and_the_mentions():
    long = make_mention(id=1, text="很长的投诉" * 20, url="https://weibo.com/" + "x" * 200)
    a = make_alert(top_mentions=(long,) * 30, console_url=URL)
    content = wecom(mention_user_ids=["zhangsan"]).build_payload(a)["markdown"]["content"]
    assert len(render_markdown(a).encode()) > MAX_BYTES
    assert len(content.encode("utf-8")) <= MAX_BYTES
    assert content.endswith(f"\n…（内容过长，已截断）\n\n[查看详情]({URL})\n确认处理：{ACK}\n\n<@zhangsan>")
    assert content.startswith(render_markdown(a)[:1000])


# -- Feishu: a button row on the card -----------------------------------------------------------------


def feishu(url: str = "http://x", **kw) -> FeishuChannel:
    return FeishuChannel(FeishuConfig(name="飞书群", type="feishu", url=url, **kw), clock=lambda: 1718078400.0)


def test_feishu_card_gets_view_and_ack_buttons():
    body = received(feishu, alert(), at_user_ids=["ou_abc"])
    assert body == {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"template": "orange", "title": {"tag": "plain_text", "content": HEAD}},
            "elements": [
                {"tag": "markdown", "content": FACTS},
                {"tag": "markdown", "content": MENTIONS},
                {"tag": "markdown", "content": PLAN_BLOCK},
                {"tag": "hr"},
                {"tag": "action", "actions": [
                    {"tag": "button", "text": {"tag": "plain_text", "content": "查看详情"}, "url": URL,
                     "type": "default"},
                    {"tag": "button", "text": {"tag": "plain_text", "content": "确认处理"}, "url": ACK,
                     "type": "primary"}]},
                {"tag": "markdown", "content": "<at id=ou_abc></at>"},
            ],
        },
    }
    done = feishu(at_all=True).build_payload(resolved())["card"]["elements"]
    assert done[1:] == [{"tag": "hr"}, {"tag": "action", "actions": [
        {"tag": "button", "text": {"tag": "plain_text", "content": "查看详情"}, "url": URL, "type": "default"}]}]


def test_feishu_without_console_keeps_the_cli_line():
    elements = received(feishu, alert(None))["card"]["elements"]
    assert elements == [{"tag": "markdown", "content": FACTS}, {"tag": "markdown", "content": MENTIONS},
                        {"tag": "markdown", "content": PLAN_BLOCK}, {"tag": "hr"},
                        {"tag": "markdown", "content": CLI_ACK}]
    assert [e["tag"] for e in feishu().build_payload(resolved(None))["card"]["elements"]] == ["markdown"]


# -- Slack: an actions block of URL buttons -------------------------------------------------------


def slack(url: str = "http://x", **kw) -> SlackChannel:
    return SlackChannel(SlackConfig(name="slack-pr", type="slack", url=url, **kw))


def _sections():
    return [{"type": "section", "text": {"type": "mrkdwn", "text": FACTS}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*代表性负面内容：*\n1. 喝完拉肚子，投诉（情感 0.05 — 张三） "
                                                                  "<https://weibo.com/123/101|原文>"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*应急预案·待办步骤：*\n" + PLAN[0]
                                                                  + "\n完整预案：`monitor incidents show 7`"}}]


def test_slack_page_ends_with_link_buttons():
    body = received(slack, alert(), answer=b"ok", mention="<!here>")
    header = {"type": "header", "text": {"type": "plain_text", "text": HEAD, "emoji": True}}
    assert body == {"text": HEAD, "blocks": [
        header, {"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"}}, *_sections(),
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "查看详情", "emoji": True}, "url": URL,
             "action_id": "console-0"},
            {"type": "button", "text": {"type": "plain_text", "text": "确认处理", "emoji": True}, "url": ACK,
             "action_id": "console-1", "style": "primary"}]},
    ]}
    assert slack().build_payload(resolved())["blocks"][-1] == {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "查看详情", "emoji": True}, "url": URL,
         "action_id": "console-0"}]}
    assert received(slack, alert(None), answer=b"ok")["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": HEAD, "emoji": True}}, *_sections(),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": CLI_ACK}]}]


# -- webhook: console_url in the JSON ----------------------------------------------------------


def webhook(url: str) -> WebhookChannel:
    return WebhookChannel(WebhookConfig(name="ops", type="webhook", url=url))


def test_webhook_json_carries_the_console_url_only_when_there_is_one():
    body = received(webhook, alert())
    assert (body["console_url"], body["text"], body["ack_command"]) == (URL, render_markdown(alert()),
                                                                         "monitor incidents ack 7")
    plain = received(webhook, alert(None))
    assert "console_url" not in plain and plain["text"] == f"### {HEAD}\n\n{BODY}\n\n{CLI_ACK}"
    assert set(body) - set(plain) == {"console_url"}


# -- email: the link in the text ----------------------------------------------------------------


def test_email_text_ends_with_the_links(smtp_server):
    inbox, port = smtp_server()
    ch = EmailChannel(EmailConfig(name="值班邮箱", type="email", host="127.0.0.1", port=port, security="none",
                                  sender="alerts@yuqing.example", to=["oncall@yuqing.example"]))
    ch.send(ch.build_payload(alert()))
    ch.send(ch.build_payload(alert(None)))
    linked, plain = (parsed(e) for e in inbox.envelopes)
    assert linked.get_content() == f"### {HEAD}\n\n{BODY}\n\n{LINKS}\n"
    assert plain.get_content() == f"### {HEAD}\n\n{BODY}\n\n{CLI_ACK}\n"
    assert linked.get_content_type() == plain.get_content_type() == "text/plain"


# -- console: the address beside the CLI hint ---------------------------------------------------------


def test_console_shows_the_address_and_keeps_the_cli_hint(capsys):
    channel = ConsoleChannel(ConsoleConfig(name="console", type="console"))
    assert channel.build_payload(alert()) == {"title": HEAD, "markdown": f"{BODY}\n\n查看详情：{URL}\n\n{CLI_ACK}",
                                              "style": "bold red"}
    assert channel.build_payload(alert(None))["markdown"] == f"{BODY}\n\n{CLI_ACK}"
    channel.send(channel.build_payload(alert()))
    out = capsys.readouterr().out
    assert URL in out and "monitor incidents ack 7" in out and "?ack=1" not in out


# -- from the config to the receiver, through the stored page --------------------------------


def test_public_url_from_the_config_reaches_a_retried_page(db):
    config = parse_config(f"console:\n  public_url: {PUBLIC}/\n")
    [page] = IncidentManager.from_config(db, config).handle([make_match(topic="品牌A/../?x=<b>")], T0)
    assert page.console_url == f"{PUBLIC}/incidents/{page.incident_id}"  # the topic never reaches the link
    answers = iter([Response(500, b"boom"), Response(200, b'{"errcode": 0}')])
    with LocalServer(lambda _r: next(answers)) as server:
        channel = DingTalkChannel(DingTalkConfig(name="钉钉值班群", type="dingtalk", url=f"{server.url}/hook",
                                                 retry={"attempts": 3, "backoff": "30s"}))
        try:
            notifier = Notifier(db, [channel])
            notifier.deliver([page], T0)
            assert notifier.run_due(T0 + timedelta(seconds=30)) == 1  # read back from the stored page
        finally:
            channel.close()
    first, retried = (json.loads(r.body) for r in server.requests)
    assert first == retried
    assert retried["actionCard"]["btns"] == [
        {"title": "查看详情", "actionURL": page.console_url},
        {"title": "确认处理", "actionURL": f"{page.console_url}?ack=1"}]
    no_console = IncidentManager.from_config(db, parse_config("{}"))
    [quiet] = no_console.handle([make_match(topic="品牌B")], T0)
    assert quiet.console_url is None and quiet.ack_url is None
