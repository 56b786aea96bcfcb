"""feishu: a Feishu / Lark (飞书) group custom bot, as an interactive card.

Body (documented "interactive" message with a card)::

    {"msg_type": "interactive",
     "card": {"config": {"wide_screen_mode": true},
              "header": {"template": "<colour>", "title": {"tag": "plain_text", "content": "<headline>"}},
              "elements": [{"tag": "markdown", "content": "..."}, ..., {"tag": "hr"}, ...]}}

With a web console (``Alert.console_url``) the acknowledge line gives way to
a button row — ``{"tag": "action", "actions": [{"tag": "button", "url": …}, …]}``
with 查看详情 and 确认处理 (the latter not on 已恢复).
The header colour follows the severity (I red, II orange, III yellow, IV blue;
已恢复 green). With ``secret`` (签名校验) the body also carries
``"timestamp": "<unix seconds>"`` and ``"sign": base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=""))``.
A reply whose ``code`` (or, from older endpoints, ``StatusCode``) is not 0 is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Literal

from pydantic import SecretStr

from alerts.alert import Alert
from alerts.channels.base import ChannelConfig, RateLimit
from alerts.channels.http import HttpChannel, short
from alerts.message import ack_line, blocks, buttons, headline
from monitor.core.errors import ChannelError

RESOLVED = "green"


class FeishuConfig(ChannelConfig):
    type: Literal["feishu"]
    url: SecretStr  # https://open.feishu.cn/open-apis/bot/v2/hook/… (Lark: open.larksuite.com)
    secret: SecretStr | None = None
    at_user_ids: tuple[str, ...] = ()  # open_ids (ou_…)
    at_all: bool = False
    rate_limit: RateLimit | None = RateLimit(messages=100, per=timedelta(minutes=1))


def sign(secret: str, timestamp: int) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode("utf-8"), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


class FeishuChannel(HttpChannel):
    config_model = FeishuConfig
    config: FeishuConfig

    def build_payload(self, alert: Alert) -> dict:
        elements: list[dict] = [{"tag": "markdown", "content": b} for b in blocks(alert, actions=None)]
        links, ack = buttons(alert), ack_line(alert)
        if links:
            elements += [{"tag": "hr"}, {"tag": "action", "actions": [
                {"tag": "button", "text": {"tag": "plain_text", "content": label}, "url": url,
                 "type": "primary" if url == alert.ack_url else "default"} for label, url in links]}]
        elif ack:
            elements += [{"tag": "hr"}, {"tag": "markdown", "content": ack}]
        if alert.kind != "resolved":
            ats = (["<at id=all></at>"] if self.config.at_all else []) + [
                f"<at id={u}></at>" for u in self.config.at_user_ids]
            if ats:
                elements.append({"tag": "markdown", "content": " ".join(ats)})
        colour = RESOLVED if alert.kind == "resolved" else alert.severity.feishu_template
        return {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {"template": colour, "title": {"tag": "plain_text", "content": headline(alert)}},
                "elements": elements,
            },
        }

    def request_body(self, payload: dict) -> dict:
        """The body actually posted: the payload, signed when a secret is set (pure apart from the clock)."""
        if self.config.secret is None:
            return payload
        ts = int(self._clock())
        return {"timestamp": str(ts), "sign": sign(self.config.secret.get_secret_value(), ts), **payload}

    def send(self, payload: dict) -> None:
        reply = self.json_reply(self.post_json(self.config.url.get_secret_value(), self.request_body(payload)))
        code = reply["code"] if "code" in reply else reply.get("StatusCode")
        if code != 0:
            msg = reply.get("msg", reply.get("StatusMessage", ""))
            raise ChannelError(self.name, f"Feishu code {code}: {short(msg)}")
