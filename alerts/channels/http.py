"""Shared plumbing for the channels that POST JSON to a chat robot's webhook.

Errors are translated here once, without ever putting the URL in the reason:
robot URLs embed their access token.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable


from alerts.channels.base import Channel, ChannelConfig
from monitor.core.errors import ChannelError

if TYPE_CHECKING:
    import httpx

DETAIL = 200  # characters of a platform's error message kept in the reason


def dumps(body: Any) -> bytes:
    """The bytes sent: UTF-8 JSON (Chinese as is, not \\u escapes)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def short(text: Any) -> str:
    text = str(text).strip().replace("\n", " ")
    return text if len(text) <= DETAIL else text[:DETAIL] + "…"


class HttpChannel(Channel):
    """A channel posting JSON with httpx; ``clock`` (unix seconds) is injectable for signatures."""

    def __init__(self, config: ChannelConfig, *, clock: Callable[[], float] = time.time):
        super().__init__(config)
        self._clock = clock
        import httpx  # here, not at import: loading a config must not pay for the HTTP stack

        self._client = httpx.Client(timeout=config.timeout.total_seconds(), follow_redirects=False)

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST ``content``; transport failures become :class:`ChannelError` (the one place they are translated)."""
        import httpx

        try:
            return self._client.post(url, content=content, headers=headers)
        except httpx.TimeoutException:
            raise ChannelError(self.name, f"timed out after {self.config.timeout.total_seconds():g}s") from None
        except httpx.HTTPError as exc:
            # str(exc) can contain the URL (and its token): report the class only
            raise ChannelError(self.name, f"cannot connect: {exc.__class__.__name__}") from None

    def post_json(self, url: str, body: Any) -> httpx.Response:
        resp = self.post(url, dumps(body), {"Content-Type": "application/json; charset=utf-8"})
        if resp.status_code >= 300:
            detail = f": {short(resp.text)}" if resp.text.strip() else ""
            raise ChannelError(self.name, f"HTTP {resp.status_code} {resp.reason_phrase}{detail}",
                               status=resp.status_code)
        return resp

    def json_reply(self, resp: httpx.Response) -> dict:
        try:
            data = resp.json()
        except ValueError:
            raise ChannelError(self.name, f"unexpected reply (not JSON): {short(resp.text)}") from None
        if not isinstance(data, dict):
            raise ChannelError(self.name, f"unexpected reply: {short(resp.text)}")
        return data

    def close(self) -> None:
        self._client.close()
