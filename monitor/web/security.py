"""Security for every console response and request: headers, and the CSRF check.

Both are plain ASGI middleware (no body buffering by Starlette's ``BaseHTTPMiddleware``):

* :class:`SecurityHeaders` adds a Content-Security-Policy that allows scripts from this origin only
  (no inline script, no eval: mention text comes from strangers), ``X-Frame-Options: DENY``,
  ``nosniff``, a same-origin referrer policy, and ``no-store`` on pages (they show people's data).
* :class:`CsrfCheck` refuses every request that is not GET/HEAD/OPTIONS unless it carries the
  session's token — in the ``X-CSRF-Token`` header (htmx sends it, from ``hx-headers`` on <body>)
  or in the form field ``csrf_token`` (:func:`csrf_input` renders it). 403 otherwise.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request

from monitor.app.httpd import read_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BODY = 1024 * 1024  # console forms are short; larger bodies are refused before parsing

# Styles may be inline (SVG charts use style attributes); scripts may not.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use (the login form's GET makes it for anonymous visitors)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def new_csrf_token(session: dict[str, Any]) -> str:
    """A fresh token (after logging in: a token seen before login is not the session's any more)."""
    session.pop("csrf", None)
    return csrf_token(session)


class CsrfCheck:
    """Refuse a state-changing request without the session's token; ``refuse(scope, status, message)``
    answers (an error page)."""

    def __init__(self, app: ASGIApp, refuse: Callable[[dict, int, str], Any]):
        self.app, self.refuse = app, refuse

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)
        expected = scope.get("session", {}).get("csrf")
        headers = dict(scope["headers"])
        given = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
        replay = receive
        if not given:
            body = await read_body(receive, MAX_FORM_BODY)
            if body is None:
                return await self.refuse(scope, 413, "请求内容过大")(scope, receive, send)
            replay = _replayer(body)
            form = await Request(scope, replay).form()
            given = str(form.get(CSRF_FIELD) or "")
            replay = _replayer(body)  # the handler reads the body again
        if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
            return await self.refuse(scope, 403, "页面已过期或请求来源无效（CSRF 校验失败），请刷新页面后重试")(
                scope, receive, send)
        await self.app(scope, replay, send)


def _replayer(body: bytes) -> Callable:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:  # the body was delivered: wait like a real connection would, as "disconnected"
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
