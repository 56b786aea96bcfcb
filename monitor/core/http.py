"""The request / response values the daemon's HTTP listener hands to route handlers.

Handlers (the webhook source, health and metrics) are plain functions ``Request -> Response``,
so they are tested without a server and do not depend on which server runs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from monitor.core.errors import ConfigError

DEFAULT_BIND = "127.0.0.1:8787"
DEFAULT_MAX_BODY = 10 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str = ""


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


Handler = Callable[[Request], Response]


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"http.bind: expected HOST:PORT like {DEFAULT_BIND!r}, got {bind!r}")
    return host.strip("[]"), int(port)
