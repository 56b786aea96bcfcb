"""The console's Starlette application, and what it needs to run (settings, the session secret).

``create_app(ctx, daemon_routes=..., settings=...)`` builds one ASGI app: every screen module listed in
:mod:`monitor.web.pages`, the static files (``/static``: ``console.css``, htmx), sessions, CSRF and
security headers — and, inside the daemon, the daemon's own routes (webhook intake, ``/healthz``,
``/metrics``), which bypass the console's session and CSRF layers (they carry their own tokens).
Middleware, outermost first: security headers → daemon routes → session cookie → CSRF → routes.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from monitor.app.service import Context
from monitor.core.errors import UsageError
from monitor.web import pages
from monitor.web.auth import LoginThrottle, current_user
from monitor.web.security import HEADERS, CsrfCheck, SecurityHeaders
from monitor.web.templating import render

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
SECRET_FILE = "console_secret"
SESSION_COOKIE = "yuqing_session"


@dataclass(frozen=True)
class Settings:
    secret: str
    idle_timeout: timedelta = timedelta(hours=12)
    public_url: str | None = None

    @property
    def secure_cookie(self) -> bool:
        """Behind HTTPS (``console.public_url`` is https) the cookie is sent over HTTPS only."""
        return bool(self.public_url and self.public_url.startswith("https://"))


def settings_from_config(config: Any) -> Settings:
    console = config.console
    secret = console.secret or stored_secret(Path(config.data_dir))
    return Settings(secret, console.idle_timeout, console.public_url)


def stored_secret(data_dir: Path) -> str:
    """The session secret kept in ``data_dir/console_secret`` (made once, mode 600): sessions survive restarts."""
    path = data_dir / SECRET_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:  # O_EXCL: when two processes start at once, the second reads the first one's secret
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret + "\n")
    return secret


class DaemonRoutes(Protocol):
    """The daemon's routes (:class:`monitor.app.httpd.HttpServer`): an ASGI app for the paths it handles."""

    def handles(self, path: str) -> bool: ...

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None: ...


class _PassDaemonRoutes:
    def __init__(self, app: Any, routes: DaemonRoutes):
        self.app, self.routes = app, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.routes.handles(scope["path"]):
            return await self.routes(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(ctx: Context, *, daemon_routes: DaemonRoutes | None = None, settings: Settings | None = None) -> Starlette:
    settings = settings or settings_from_config(ctx.config)
    idle = int(settings.idle_timeout.total_seconds())
    middleware = [Middleware(SecurityHeaders)]
    if daemon_routes is not None:
        middleware.append(Middleware(_PassDaemonRoutes, routes=daemon_routes))
    middleware += [
        Middleware(SessionMiddleware, secret_key=settings.secret, session_cookie=SESSION_COOKIE, max_age=idle,
                   same_site="lax", https_only=settings.secure_cookie),
        Middleware(CsrfCheck, refuse=_refusal),
    ]
    app = Starlette(
        routes=[*pages.routes(), Mount("/static", StaticFiles(directory=STATIC), name="static")],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, UsageError: _monitor_error, Exception: _server_error},
    )
    app.state.ctx = ctx
    app.state.settings = settings
    app.state.throttle = LoginThrottle()
    return app


def _refusal(scope: dict, status: int, message: str) -> Response:
    """The answer of the CSRF layer (before any route ran): an error page, or JSON for scripts."""
    request = Request(scope)
    if "text/html" not in request.headers.get("accept", "") and not request.headers.get("hx-request"):
        return JSONResponse({"error": message}, status)
    return render(request, "error.html", {"title": "请求被拒绝", "message": message}, status=status)


async def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    await current_user(request)  # the menu shows who is logged in
    if request.headers.get("hx-request"):
        return Response(message, status, media_type="text/plain; charset=utf-8")
    return render(request, "error.html", {"title": title, "message": message}, status=status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    titles = {404: ("页面不存在", "没有这个页面。"), 405: ("不支持的请求", "此页面不支持这种请求方式。")}
    title, message = titles.get(exc.status_code, ("请求有误", str(exc.detail)))
    return await _error_page(request, exc.status_code, title, message)


async def _monitor_error(request: Request, exc: UsageError) -> Response:
    """A service refused the request: its message, for people. Anything else (a database error names
    the database and its SQL) is a 500 with a generic page and the details in the log only."""
    return await _error_page(request, 400, "无法完成", str(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("[stage=http] %s %s failed", request.method, request.url.path, exc_info=exc)
    response = render(request, "error.html", {"title": "服务器内部错误", "message": "出错了，请稍后重试；问题已记录在日志中。"},
                      status=500)
    # Starlette answers this outside the middleware stack: the security headers are set here too.
    response.headers.update(HEADERS)
    return response
