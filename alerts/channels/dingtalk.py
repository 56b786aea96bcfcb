"""dingtalk: a DingTalk (钉钉) group custom robot.

Body (documented "markdown" message)::

    {"msgtype": "markdown",
     "markdown": {"title": "<headline>", "text": "<markdown>"},
     "at": {"atMobiles": [...], "atUserIds": [...], "isAtAll": false}}

With a web console (``Alert.console_url``) the page is an ActionCard
(独立跳转) instead, the acknowledge line giving way to buttons::

    {"msgtype": "actionCard",
     "actionCard": {"title": "<headline>", "text": "<markdown>", "btnOrientation": "1",
                    "btns": [{"title": "查看详情", "actionURL": "<url>"},
                             {"title": "确认处理", "actionURL": "<url>?ack=1"}]},
     "at": {...}}

DingTalk documents ``at`` for text and markdown messages only; it is sent with
the card all the same (and the @ names stay in the text), but whether the
people named are notified is up to DingTalk.

Mobiles to @ also appear as ``@<mobile>`` in the text (DingTalk only notifies
people named there). Resolved notices @ nobody. With ``secret`` (加签) the URL
gets ``&timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(secret, "<ms>\\n<secret>")))>``.
A reply whose ``errcode`` is not 0 is a failure (e.g. 130101: more than 20
messages a minute — the default ``rate_limit``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Literal
from urllib.parse import quote_plus

from pydantic import SecretStr

from alerts.alert import Alert
from alerts.channels.base import ChannelConfig, RateLimit
from alerts.channels.http import HttpChannel, short
from alerts.message import buttons, headline, render_markdown
from monitor.core.errors import ChannelError


class DingTalkConfig(ChannelConfig):
    type: Literal["dingtalk"]
    url: SecretStr  # https://oapi.dingtalk.com/robot/send?access_token=…
    secret: SecretStr | None = None  # 加签 secret, "SEC…"
    at_mobiles: tuple[str, ...] = ()
    at_user_ids: tuple[str, ...] = ()
    at_all: bool = False
    rate_limit: RateLimit | None = RateLimit(messages=20, per=timedelta(minutes=1))


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, already URL-encoded for the query string."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256)
    return quote_plus(base64.b64encode(mac.digest()))


class DingTalkChannel(HttpChannel):
    config_model = DingTalkConfig
    config: DingTalkConfig

    def build_payload(self, alert: Alert) -> dict:
        cfg = self.config
        paging = alert.kind != "resolved"
        mobiles = list(cfg.at_mobiles) if paging else []
        links = buttons(alert)
        text = render_markdown(alert, actions=None if links else "links")
        if mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in mobiles)
        at = {"atMobiles": mobiles, "atUserIds": list(cfg.at_user_ids) if paging else [],
              "isAtAll": cfg.at_all and paging}
        if links:
            card = {"title": headline(alert), "text": text, "btnOrientation": "1",  # "1": side by side
                    "btns": [{"title": label, "actionURL": url} for label, url in links]}
            return {"msgtype": "actionCard", "actionCard": card, "at": at}
        return {"msgtype": "markdown", "markdown": {"title": headline(alert), "text": text}, "at": at}

    def signed_url(self) -> str:
        url = self.config.url.get_secret_value()
        if self.config.secret is None:
            return url
        ts = int(self._clock() * 1000)
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}timestamp={ts}&sign={sign(self.config.secret.get_secret_value(), ts)}"

    def send(self, payload: dict) -> None:
        reply = self.json_reply(self.post_json(self.signed_url(), payload))
        if reply.get("errcode") != 0:
            raise ChannelError(self.name, f"DingTalk errcode {reply.get('errcode')}: {short(reply.get('errmsg', ''))}")
