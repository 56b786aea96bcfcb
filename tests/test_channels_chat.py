"""Chat robots — DingTalk, WeCom, Feishu/Lark, Slack: exact documented payloads, signatures checked
the way the platforms check them, against real HTTP receivers on 127.0.0.1 (fixed clock)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

from alerts.channels.dingtalk import DingTalkChannel, DingTalkConfig
from alerts.channels.feishu import FeishuChannel, FeishuConfig
from alerts.channels.slack import SlackChannel, SlackConfig, mrkdwn
from alerts.channels.wecom import MAX_BYTES, WeComChannel, WeComConfig
from alerts.message import render_markdown
from monitor.core.severity import Severity
from monitor.core.errors import ChannelError
from tests.factories import make_alert, make_mention
from tests.servers import LocalServer, Request, Response

TOKEN = "ROBOTTOKEN0123456789abcdef"
CLOCK = 1718078400.9  # 2024-06-11 04:00:00.9 UTC
PLAN = ("1. 核实情况，联系当事门店（公关专员，12:30前）", "2. 发布致歉声明（品牌经理，14:00前）")


def alert(**kw):
    mentions = (make_mention(id=101, text="喝完拉肚子 <严重> & 投诉", score=0.05, author="张三",
                             url="https://weibo.com/123/101?from=a&x=1"),)
    return make_alert(top_mentions=mentions, plan_steps=PLAN, **kw)


def reply(body: dict, status: int = 200):
    return lambda _req: Response(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def sent(channel, a) -> None:
    """Send ``a`` through ``channel`` (then close it)."""
    try:
        channel.send(channel.build_payload(a))
    finally:
        channel.close()


def one_request(server: LocalServer) -> Request:
    [req] = server.requests
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json; charset=utf-8"
    assert "品牌A".encode() in req.body  # UTF-8, not \\u escapes
    return req


def assert_no_token(exc: ChannelError) -> None:
    assert TOKEN not in str(exc) and TOKEN not in repr(exc)


# -- DingTalk --------------------------------------------------------------------------------


def dingtalk(url: str, **kw) -> DingTalkChannel:
    return DingTalkChannel(DingTalkConfig(name="钉钉值班群", type="dingtalk", url=url, **kw), clock=lambda: CLOCK)


def test_dingtalk_payload_is_the_documented_markdown_message_with_at():
    channel = dingtalk("http://x/robot/send?access_token=t", at_mobiles=["13800000000", "13900000000"])
    a = alert(severity=Severity.II)
    assert channel.build_payload(a) == {
        "msgtype": "markdown",
        "markdown": {"title": "【舆情告警】重大（II级） · 「品牌A」负面激增",
                     "text": render_markdown(a) + "\n\n@13800000000 @13900000000"},
        "at": {"atMobiles": ["13800000000", "13900000000"], "atUserIds": [], "isAtAll": False},
    }
    resolved = channel.build_payload(make_alert(kind="resolved"))
    assert resolved["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}
    assert "@138" not in resolved["markdown"]["text"]
    everyone = dingtalk("http://x", at_all=True, at_user_ids=["manager01"]).build_payload(a)["at"]
    assert everyone == {"atMobiles": [], "atUserIds": ["manager01"], "isAtAll": True}


def test_dingtalk_signed_request_verifies_like_dingtalk_does():
    secret = "SECb1f2e3d4c5b6a7980"
    with LocalServer(reply({"errcode": 0, "errmsg": "ok"})) as server:
        channel = dingtalk(f"{server.url}/robot/send?access_token={TOKEN}", secret=secret, at_mobiles=["13800000000"])
        payload = channel.build_payload(alert())
        sent(channel, alert())

    req = one_request(server)
    parts = urlsplit(req.path)
    assert parts.path == "/robot/send"
    query = parse_qs(parts.query)
    assert query["access_token"] == [TOKEN]
    assert query["timestamp"] == ["1718078400900"]  # milliseconds
    mac = hmac.new(secret.encode(), f"1718078400900\n{secret}".encode(), hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(mac).decode()]  # parse_qs url-decodes it
    raw_sign = parts.query.split("sign=")[1]
    assert unquote_plus(raw_sign) == base64.b64encode(mac).decode() and "+" not in raw_sign.replace("%2B", "")
    assert json.loads(req.body) == payload


def test_dingtalk_without_secret_posts_to_the_url_as_given():
    with LocalServer(reply({"errcode": 0, "errmsg": "ok"})) as server:
        sent(dingtalk(f"{server.url}/robot/send?access_token={TOKEN}"), alert())
    assert one_request(server).path == f"/robot/send?access_token={TOKEN}"


@pytest.mark.parametrize("body,reason", [
    ({"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2]"},
     "DingTalk errcode 310000: sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2]"),
    ({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
     "DingTalk errcode 130101: send too fast, exceed 20 times per minute"),
    ({"errmsg": "ok"}, "DingTalk errcode None: ok"),
])
def test_dingtalk_nonzero_errcode_is_a_failure(body, reason):
    with LocalServer(reply(body)) as server:
        channel = dingtalk(f"{server.url}/robot/send?access_token={TOKEN}", secret="SECxyz")
        with pytest.raises(ChannelError) as info:
            sent(channel, alert())
    assert (info.value.channel, info.value.reason) == ("钉钉值班群", reason)
    assert_no_token(info.value)


def test_dingtalk_defaults_to_its_documented_rate_limit():
    limit = dingtalk("http://x").config.rate_limit
    assert (limit.messages, limit.per.total_seconds()) == (20, 60)


# -- WeCom -----------------------------------------------------------------------------------


def wecom(url: str, **kw) -> WeComChannel:
    return WeComChannel(WeComConfig(name="企业微信群", type="wecom", url=url, **kw))


def test_wecom_posts_the_documented_markdown_message():
    a = alert()
    with LocalServer(reply({"errcode": 0, "errmsg": "ok"})) as server:
        sent(wecom(f"{server.url}/cgi-bin/webhook/send?key={TOKEN}", mention_user_ids=["zhangsan", "lisi"]), a)
    req = one_request(server)
    assert req.path == f"/cgi-bin/webhook/send?key={TOKEN}"
    assert json.loads(req.body) == {
        "msgtype": "markdown",
        "markdown": {"content": render_markdown(a) + "\n\n<@zhangsan><@lisi>"},
    }


def test_wecom_content_is_cut_to_4096_utf8_bytes_keeping_the_mentions():
    long = make_mention(id=1, text="很长的投诉" * 20, url="https://weibo.com/" + "x" * 200)
    a = make_alert(top_mentions=(long,) * 30)
    content = wecom("http://x", mention_user_ids=["zhangsan"]).build_payload(a)["markdown"]["content"]
    assert len(render_markdown(a).encode()) > MAX_BYTES
    assert len(content.encode("utf-8")) <= MAX_BYTES
    assert content.endswith("\n…（内容过长，已截断）\n\n<@zhangsan>")
    assert content.startswith(render_markdown(a)[:1000])
    assert wecom("http://x").build_payload(make_alert())["markdown"]["content"] == render_markdown(make_alert())


def test_wecom_error_code_is_a_failure_without_the_key():
    with LocalServer(reply({"errcode": 93000, "errmsg": "invalid webhook url"})) as server:
        with pytest.raises(ChannelError) as info:
            sent(wecom(f"{server.url}/cgi-bin/webhook/send?key={TOKEN}"), alert())
    assert info.value.reason == "WeCom errcode 93000: invalid webhook url"
    assert_no_token(info.value)


# -- Feishu / Lark ---------------------------------------------------------------------------


def feishu(url: str, **kw) -> FeishuChannel:
    return FeishuChannel(FeishuConfig(name="飞书群", type="feishu", url=url, **kw), clock=lambda: CLOCK)


def test_feishu_card_has_severity_colour_and_markdown_elements():
    a = alert(severity=Severity.I)
    card = feishu("http://x", at_all=True, at_user_ids=["ou_abc"]).build_payload(a)
    assert card == {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"template": "red",
                       "title": {"tag": "plain_text", "content": "【舆情告警】特别重大（I级） · 「品牌A」负面激增"}},
            "elements": [
                {"tag": "markdown", "content": "\n".join([
                    "- 事件编号：#7", "- 话题：品牌A", "- 规则：负面激增", "- 时间：2024-06-11 12:00:00（Asia/Shanghai）",
                    "- 原因：「品牌A」负面声量激增：近10m负面 12 条（占 80%），基准约 0.33 条，为基准的 36 倍",
                    "- 数据：当前窗口负面数 12；当前窗口总量 15；负面占比 0.8；参考窗口负面数 0；"
                    "基准（折算到当前窗口） 0.33；倍数 36.36"])},
                {"tag": "markdown", "content": "**代表性负面内容：**\n1. 喝完拉肚子 <严重> & 投诉（情感 0.05 — 张三） "
                                               "[原文](https://weibo.com/123/101?from=a&x=1)"},
                {"tag": "markdown", "content": "**应急预案·待办步骤：**\n" + "\n".join(PLAN)
                                               + "\n完整预案：`monitor incidents show 7`"},
                {"tag": "hr"},
                {"tag": "markdown", "content": "确认处理：`monitor incidents ack 7`"},
                {"tag": "markdown", "content": "<at id=all></at> <at id=ou_abc></at>"},
            ],
        },
    }
    colours = {sev: feishu("http://x").build_payload(make_alert(severity=sev))["card"]["header"]["template"]
               for sev in Severity}
    assert colours == {Severity.I: "red", Severity.II: "orange", Severity.III: "yellow", Severity.IV: "blue"}
    resolved = feishu("http://x", at_all=True).build_payload(make_alert(kind="resolved", severity=Severity.I))["card"]
    assert resolved["header"]["template"] == "green"
    assert [e["tag"] for e in resolved["elements"]] == ["markdown"]  # no ack, no @all on 已恢复


def test_feishu_signed_body_verifies_like_feishu_does():
    secret = "feishu-sign-secret"
    a = alert()
    with LocalServer(reply({"code": 0, "msg": "success", "data": {}})) as server:
        channel = feishu(f"{server.url}/open-apis/bot/v2/hook/{TOKEN}", secret=secret)
        payload = channel.build_payload(a)
        sent(channel, a)

    req = one_request(server)
    assert req.path == f"/open-apis/bot/v2/hook/{TOKEN}"
    body = json.loads(req.body)
    assert body["timestamp"] == "1718078400"  # seconds, as a string
    expected = base64.b64encode(hmac.new(f"1718078400\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected
    assert body == {"timestamp": "1718078400", "sign": expected, **payload}


def test_feishu_unsigned_body_is_the_payload_and_old_statuscode_replies_are_understood():
    with LocalServer(reply({"Extra": None, "StatusCode": 0, "StatusMessage": "success"})) as server:
        channel = feishu(f"{server.url}/open-apis/bot/v2/hook/{TOKEN}")
        payload = channel.build_payload(alert())
        sent(channel, alert())
    assert json.loads(one_request(server).body) == payload


@pytest.mark.parametrize("body,reason", [
    ({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"},
     "Feishu code 19021: sign match fail or timestamp is not within one hour from current time"),
    ({"code": 9499, "msg": "Bad Request", "data": {}}, "Feishu code 9499: Bad Request"),
    ({"StatusCode": 1, "StatusMessage": "bad"}, "Feishu code 1: bad"),
])
def test_feishu_nonzero_code_is_a_failure(body, reason):
    with LocalServer(reply(body)) as server:
        with pytest.raises(ChannelError) as info:
            sent(feishu(f"{server.url}/open-apis/bot/v2/hook/{TOKEN}", secret="s"), alert())
    assert info.value.reason == reason
    assert_no_token(info.value)


# -- Slack -----------------------------------------------------------------------------------


def slack(url: str, **kw) -> SlackChannel:
    return SlackChannel(SlackConfig(name="slack-pr", type="slack", url=url, **kw))


def test_mrkdwn_escapes_and_converts_links_and_bold():
    assert mrkdwn("**代表性负面内容：**") == "*代表性负面内容：*"
    assert mrkdwn("a <b> & c [原文](https://x.com/?a=1&b=2)") == "a &lt;b&gt; &amp; c <https://x.com/?a=1&b=2|原文>"
    assert mrkdwn("确认处理：`monitor incidents ack 7`") == "确认处理：`monitor incidents ack 7`"


def test_slack_posts_text_and_blocks():
    a = alert(severity=Severity.III)
    with LocalServer(lambda _r: Response(200, b"ok")) as server:
        sent(slack(f"{server.url}/services/T000/B000/{TOKEN}", mention="<!here>"), a)
    req = one_request(server)
    assert req.path == f"/services/T000/B000/{TOKEN}"
    title = "【舆情告警】较大（III级） · 「品牌A」负面激增"
    assert json.loads(req.body) == {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join([
                "- 事件编号：#7", "- 话题：品牌A", "- 规则：负面激增", "- 时间：2024-06-11 12:00:00（Asia/Shanghai）",
                "- 原因：「品牌A」负面声量激增：近10m负面 12 条（占 80%），基准约 0.33 条，为基准的 36 倍",
                "- 数据：当前窗口负面数 12；当前窗口总量 15；负面占比 0.8；参考窗口负面数 0；"
                "基准（折算到当前窗口） 0.33；倍数 36.36"])}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*代表性负面内容：*\n1. 喝完拉肚子 &lt;严重&gt; &amp; 投诉"
                                                                  "（情感 0.05 — 张三） <https://weibo.com/123/101?from=a&x=1|原文>"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*应急预案·待办步骤：*\n" + "\n".join(PLAN)
                                                                  + "\n完整预案：`monitor incidents show 7`"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "确认处理：`monitor incidents ack 7`"}]},
        ],
    }


def test_slack_resolved_has_no_mention_and_no_ack():
    payload = slack("http://x", mention="<!here>").build_payload(make_alert(kind="resolved"))
    assert [b["type"] for b in payload["blocks"]] == ["header", "section"]
    assert payload["text"] == "【已恢复】一般（IV级） · 「品牌A」负面激增"


@pytest.mark.parametrize("status,body,reason", [
    (400, b"invalid_payload", "HTTP 400 Bad Request: invalid_payload"),
    (404, b"no_service", "HTTP 404 Not Found: no_service"),
    (200, b"something else", "Slack replied 'something else', expected 'ok'"),
])
def test_slack_error_replies_are_failures(status, body, reason):
    with LocalServer(lambda _r: Response(status, body)) as server:
        with pytest.raises(ChannelError) as info:
            sent(slack(f"{server.url}/services/T000/B000/{TOKEN}"), alert())
    assert (info.value.reason, info.value.status) == (reason, status if status >= 300 else None)
    assert_no_token(info.value)


# -- shared HTTP failures ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [dingtalk, wecom, feishu, slack])
def test_timeouts_are_channel_errors_without_the_token(make):
    with LocalServer(lambda _r: Response(200, b"late", delay=1.0)) as server:
        channel = make(f"{server.url}/hook/{TOKEN}?access_token={TOKEN}", timeout="0.2s")
        with pytest.raises(ChannelError) as info:
            sent(channel, alert())
    assert info.value.reason == "timed out after 0.2s"
    assert_no_token(info.value)


@pytest.mark.parametrize("make", [dingtalk, wecom, feishu])
def test_a_reply_that_is_not_json_is_a_failure(make):
    with LocalServer(lambda _r: Response(502, b"")) as server:
        with pytest.raises(ChannelError, match="HTTP 502 Bad Gateway"):
            sent(make(f"{server.url}/hook"), alert())
    with LocalServer(lambda _r: Response(200, b"<html>login</html>")) as server:
        with pytest.raises(ChannelError, match=r"unexpected reply \(not JSON\): <html>login</html>"):
            sent(make(f"{server.url}/hook"), alert())


def test_secret_values_include_the_tokens_inside_robot_urls():
    channel = feishu(f"https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}", secret="sign-secret")
    assert set(channel.secret_values()) == {f"https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}", TOKEN,
                                            "sign-secret"}
    ding = dingtalk(f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}")
    assert TOKEN in ding.secret_values()


def test_a_strangers_markdown_never_becomes_a_link_in_a_page():
    """A post reading "[确认处理](https://evil…)" must not put a fake acknowledge link above the real one."""
    from alerts.message import render_markdown
    from tests.factories import make_alert, make_mention

    evil = make_mention(text="[确认处理](https://evil.example/login) <a href=x>点我</a>", author="[客服](https://evil.example)",
                        url="javascript:alert(1)")
    odd = make_mention(text="正常投诉", url="https://weibo.com/1/x) [确认处理](https://evil.example")
    text = render_markdown(make_alert(top_mentions=(evil, odd)))
    assert "](https://evil.example" not in text and "javascript:" not in text
    assert "［确认处理］(https://evil.example/login)" in text  # shown, inert
    assert "[原文](https://weibo.com/1/x%29%20[确认处理]%28https://evil.example)" in text
