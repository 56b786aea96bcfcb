"""slack: a Slack incoming webhook, with Block Kit.

Body::

    {"text": "<headline: the notification fallback>",
     "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "<headline>", "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "..."}}, ...,
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "<how to acknowledge>"}]}]}

With a web console (``Alert.console_url``) the acknowledge context gives way to
an ``actions`` block of URL buttons (查看详情, and 确认处理 while not resolved).
The shared Markdown is turned into Slack's mrkdwn (``*bold*``, ``<url|text>``,
``&``/``<``/``>`` escaped). Slack answers ``ok``; anything else (HTTP 4xx with
``invalid_payload``, ``no_service`` …) is a failure. Incoming webhooks allow
about one message a second: the default ``rate_limit``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import SecretStr

from alerts.alert import Alert
from alerts.channels.base import ChannelConfig, RateLimit
from alerts.channels.http import HttpChannel, short
from alerts.message import ack_line, blocks, buttons, headline
from monitor.core.errors import ChannelError

HEADER_MAX = 150
SECTION_MAX = 3000
_LINK = re.compile(r"\[([^\]]*)\]\((\S+?)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


class SlackConfig(ChannelConfig):
    type: Literal["slack"]
    url: SecretStr  # https://hooks.slack.com/services/T…/B…/…
    mention: str | None = None  # e.g. "<!here>" or "<!subteam^S123>", prefixed to pages (not to 已恢复)
    rate_limit: RateLimit | None = RateLimit(messages=1, per=timedelta(seconds=1))


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(markdown: str) -> str:
    """Our Markdown subset (bold, links, code, lists) as Slack mrkdwn."""
    out, pos = [], 0
    for m in _LINK.finditer(markdown):
        out.append(escape(markdown[pos:m.start()]))
        out.append(f"<{m.group(2)}|{escape(m.group(1))}>")
        pos = m.end()
    out.append(escape(markdown[pos:]))
    return _BOLD.sub(r"*\1*", "".join(out))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(label: str, url: str, index: int, primary: bool) -> dict:
    # a link button: Slack opens the URL itself; the action_id only has to be unique in the block
    button = {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": True}, "url": url,
              "action_id": f"console-{index}"}
    return {**button, "style": "primary"} if primary else button


class SlackChannel(HttpChannel):
    config_model = SlackConfig
    config: SlackConfig

    def build_payload(self, alert: Alert) -> dict:
        title = headline(alert)
        ack = ack_line(alert)
        out: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX),
                                                       "emoji": True}}]
        if self.config.mention and alert.kind != "resolved":
            out.append({"type": "section", "text": {"type": "mrkdwn", "text": self.config.mention}})
        out += [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn(b), SECTION_MAX)}}
                for b in blocks(alert, actions=None)]
        links = buttons(alert)
        if links:
            out.append({"type": "actions", "elements": [_button(label, url, i, url == alert.ack_url)
                                                        for i, (label, url) in enumerate(links)]})
        elif ack:
            out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(ack)}]})
        return {"text": title, "blocks": out}

    def send(self, payload: dict) -> None:
        resp = self.post_json(self.config.url.get_secret_value(), payload)
        if resp.text.strip() != "ok":
            raise ChannelError(self.name, f"Slack replied {short(resp.text)!r}, expected 'ok'")
