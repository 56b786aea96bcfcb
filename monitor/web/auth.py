"""Who is logged in, and may they do this: sessions, :func:`require`, and the login throttle.

A screen's handler declares the least role it needs::

    @require("responder")
    def acknowledge(request, user):  # sync handlers run in the thread pool (they call services)
        incidents.acknowledge(context(request), int(request.path_params["id"]), actor=user.name, now=now())
        return RedirectResponse(f"/incidents/{request.path_params['id']}", 303)

Not logged in: a page request is sent to ``/login?next=<where it was going>`` (303); an htmx or
JSON request gets 401 (htmx with ``HX-Redirect`` to the login page). A role too low: 403 "权限不足".
For a sync handler of a POST the form is read first and handed over as ``request.state.form``.

The session (a signed cookie, :class:`starlette.middleware.sessions.SessionMiddleware`) holds the
user's id, the password stamp (a changed password ends every session), the CSRF token and the time
of the last request (sliding idle expiry).
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from monitor.app.service import Context
from monitor.app.service import users as user_service
from monitor.app.service.users import ROLES, User
from monitor.web.security import SAFE_METHODS, new_csrf_token
from monitor.web.templating import ROLE_LABELS, render

__all__ = ["LoginThrottle", "ROLES", "User", "context", "current_user", "log_in", "log_out", "login_url", "now",
           "public", "require", "safe_next"]

_UNKNOWN = object()
REFRESH_EVERY = 60  # seconds: the session cookie is re-signed at most this often (sliding idle expiry)


def context(request: Request) -> Context:
    """The service layer's context (config and database) this app serves."""
    return request.app.state.ctx


def now() -> datetime:
    return datetime.now(timezone.utc)


def public(fn: Callable) -> Callable:
    """Mark a route handler that anonymous visitors may reach (the login page)."""
    fn.public = True
    return fn


async def current_user(request: Request) -> User | None:
    """The logged-in user of this request (None: anonymous, disabled, password changed, or idle too long)."""
    known = getattr(request.state, "user", _UNKNOWN)
    if known is not _UNKNOWN:
        return known
    session = request.session
    user = None
    uid = session.get("uid")
    if isinstance(uid, int):
        user = await run_in_threadpool(user_service.get, context(request), uid)
        if user is None or user.disabled or user.stamp != session.get("stamp"):
            session.pop("uid", None)
            user = None
        elif time.time() - session.get("seen", 0) > REFRESH_EVERY:
            session["seen"] = int(time.time())  # re-sign the cookie: idle expiry counts from here
    request.state.user = user
    return user


def log_in(request: Request, user: User) -> None:
    request.session.clear()
    request.session.update(uid=user.id, stamp=user.stamp, seen=int(time.time()))
    new_csrf_token(request.session)
    request.state.user = user


def log_out(request: Request) -> None:
    request.session.clear()
    request.state.user = None


def safe_next(target: str | None) -> str:
    """A local path to return to after login (never another site: ``//evil``, ``https://…`` → ``/``)."""
    target = (target or "").strip()
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


def login_url(request: Request) -> str:
    if request.headers.get("hx-request") and request.headers.get("hx-current-url"):
        parts = urlsplit(request.headers["hx-current-url"])  # back to the page, not to the fragment
        here = parts.path + (f"?{parts.query}" if parts.query else "")
    else:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(safe_next(here), safe="/")


def _wants_page(request: Request) -> bool:
    if request.headers.get("hx-request"):
        return False
    accept = request.headers.get("accept", "")
    return not ("application/json" in accept and "text/html" not in accept)


def unauthenticated(request: Request) -> Response:
    target = login_url(request)
    if request.headers.get("hx-request"):
        return Response("请先登录", 401, {"HX-Redirect": target})
    if not _wants_page(request):
        return JSONResponse({"error": "login required", "login": target}, 401)
    return RedirectResponse(target, 303)


def forbidden(request: Request, user: User, role: str) -> Response:
    message = f"权限不足：此操作需要「{ROLE_LABELS[role]}」或更高权限，你的角色是「{ROLE_LABELS[user.role]}」。"
    if not _wants_page(request):
        return JSONResponse({"error": "forbidden", "message": message}, 403)
    return render(request, "error.html", {"title": "权限不足", "message": message}, status=403)


def require(role: str = "viewer") -> Callable[[Callable], Callable]:
    """Decorate a route handler ``fn(request, user)`` (sync or async) so it runs only for a user of ``role`` or more."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")

    def decorate(fn: Callable) -> Callable:
        is_async = inspect.iscoroutinefunction(fn)

        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            user = await current_user(request)
            if user is None:
                return unauthenticated(request)
            if not user.may(role):
                return forbidden(request, user, role)
            if is_async:
                return await fn(request, user)
            if request.method not in SAFE_METHODS:
                request.state.form = await request.form()
            return await run_in_threadpool(fn, request, user)

        endpoint.required_role = role
        del endpoint.__wrapped__  # Starlette must see the async wrapper, not the sync handler
        return endpoint

    return decorate


# -- login throttle ----------------------------------------------------------------------
@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Failed logins per (user name, client): after ``free`` failures each attempt must wait
    ``base`` × 2^(failures − free) seconds (at most ``cap``) after the last failure. Pure: ``now``
    (seconds, monotonic) is passed in. A success forgets the key; keys idle for ``forget`` go away.
    The login page also counts per client alone (key ``("", client)``) with ``free_per_client``, so one
    password tried against many names is slowed down too.
    """

    free: int = 5
    free_per_client: int = 20
    base: float = 1.0
    cap: float = 15 * 60
    forget: float = 24 * 3600
    max_keys: int = 100_000
    _failures: dict[tuple[str, str], _Failures] = field(default_factory=dict)

    def wait(self, key: tuple[str, str], now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        free = self.free if key[0] else self.free_per_client
        entry = self._failures.get(key)
        if entry is None or entry.count < free:
            return 0.0
        delay = min(self.cap, self.base * 2 ** (entry.count - free))
        return max(0.0, entry.last + delay - now)

    def failed(self, key: tuple[str, str], now: float) -> None:
        if len(self._failures) >= self.max_keys:
            self._prune(now)
        entry = self._failures.setdefault(key, _Failures())
        entry.count += 1
        entry.last = now

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._failures.items() if now - e.last > self.forget]:
            del self._failures[key]
        while len(self._failures) >= self.max_keys:  # still full: drop the oldest
            del self._failures[min(self._failures, key=lambda k: self._failures[k].last)]


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
