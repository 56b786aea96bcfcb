"""webhook: POST the alert as JSON to any HTTP endpoint.

Body: a stable JSON document (see :meth:`WebhookChannel.build_payload`); with a
web console it also carries ``console_url``, the incident's page.
When ``secret`` is set, the request carries
``X-Yuqing-Timestamp: <unix seconds>`` and
``X-Yuqing-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
so the receiver can verify origin and freshness.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Literal

from pydantic import SecretStr

from alerts.alert import Alert
from alerts.channels.base import ChannelConfig
from alerts.channels.http import HttpChannel
from alerts.message import headline, render_markdown
from monitor.core.errors import ChannelError

SCHEMA_VERSION = 1


class WebhookConfig(ChannelConfig):
    type: Literal["webhook"]
    url: SecretStr  # URLs of chat robots embed their token: never logged
    secret: SecretStr | None = None
    headers: dict[str, SecretStr] = {}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(HttpChannel):
    config_model = WebhookConfig
    config: WebhookConfig

    def build_payload(self, alert: Alert) -> dict:
        document = {
            "version": SCHEMA_VERSION,
            "kind": alert.kind,
            "incident_id": alert.incident_id,
            "severity": alert.severity.value,
            "severity_label": alert.severity.label,
            "topic": alert.topic,
            "rule": alert.rule,
            "title": headline(alert),
            "reason": alert.reason,
            "at": alert.at.isoformat(),
            "numbers": alert.numbers,
            "top_mentions": [
                {"id": m.id, "source": m.source, "author": m.author, "url": m.url, "text": m.text, "score": m.score}
                for m in alert.top_mentions
            ],
            "plan_steps": list(alert.plan_steps),
            "text": render_markdown(alert),
            "ack_command": alert.ack_command,
        }
        if alert.console_url:  # absent without a console: the document stays as it was
            document["console_url"] = alert.console_url
        if alert.summary:  # 主要诉求 / 舆情热度 / 最大传播, structured (alerts.crisis_summary)
            document["summary"] = alert.summary
        return document

    def request(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers to send (pure apart from the clock)."""
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers["X-Yuqing-Event"] = payload["kind"]
        if self.config.secret is not None:
            ts = int(self._clock())
            headers["X-Yuqing-Timestamp"] = str(ts)
            headers["X-Yuqing-Signature"] = sign(self.config.secret.get_secret_value(), ts, body)
        return body, headers

    def send(self, payload: dict) -> None:
        body, headers = self.request(payload)
        resp = self.post(self.config.url.get_secret_value(), body, headers)
        if resp.status_code >= 300:
            raise ChannelError(self.name, f"HTTP {resp.status_code} {resp.reason_phrase}", status=resp.status_code)
