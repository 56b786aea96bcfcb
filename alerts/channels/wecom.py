"""wecom: a WeCom (企业微信) group robot.

Body (documented "markdown" message)::

    {"msgtype": "markdown", "markdown": {"content": "<markdown, at most 4096 bytes>"}}

With a web console (``Alert.console_url``) the content ends with
``[查看详情](<url>)`` and ``确认处理：<url>?ack=1``; a page cut to the size
limit keeps those lines (and the mentions) whole.

``mention_user_ids`` are appended as ``<@userid>`` (the markdown way to @
someone); resolved notices @ nobody. A reply whose ``errcode`` is not 0 is a
failure (45009: more than 20 messages a minute — the default ``rate_limit``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import SecretStr

from alerts.alert import Alert
from alerts.channels.base import ChannelConfig, RateLimit
from alerts.channels.http import HttpChannel, short
from alerts.message import action_lines, render_markdown
from monitor.core.errors import ChannelError

MAX_BYTES = 4096
ELLIPSIS = "\n…（内容过长，已截断）"


class WeComConfig(ChannelConfig):
    type: Literal["wecom"]
    url: SecretStr  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…
    mention_user_ids: tuple[str, ...] = ()
    rate_limit: RateLimit | None = RateLimit(messages=20, per=timedelta(minutes=1))


def truncate_utf8(text: str, limit: int, tail: str = ELLIPSIS) -> str:
    """``text`` cut (on a character boundary) so that its UTF-8 form with ``tail`` fits ``limit`` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(tail.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + tail


class WeComChannel(HttpChannel):
    config_model = WeComConfig
    config: WeComConfig

    def build_payload(self, alert: Alert) -> dict:
        mentions = ""
        if alert.kind != "resolved" and self.config.mention_user_ids:
            mentions = "\n\n" + "".join(f"<@{u}>" for u in self.config.mention_user_ids)
        # Without a console the CLI hint is part of the body (and may be cut, as it always was);
        # the console links are the point of a page, so they are kept out of the cut.
        links = "\n".join(action_lines(alert)) if alert.console_url else ""
        tail = ("\n\n" + links if links else "") + mentions
        body = render_markdown(alert, actions=None if links else "links")
        content = truncate_utf8(body, MAX_BYTES - len(tail.encode("utf-8"))) + tail
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def send(self, payload: dict) -> None:
        reply = self.json_reply(self.post_json(self.config.url.get_secret_value(), payload))
        if reply.get("errcode") != 0:
            raise ChannelError(self.name, f"WeCom errcode {reply.get('errcode')}: {short(reply.get('errmsg', ''))}")
