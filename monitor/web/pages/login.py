"""``/login`` (form; POST checks the password, throttled per user name and client) and ``/logout`` (POST)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.app.service import users as user_service
from monitor.web.auth import context, current_user, log_in, log_out, now, public, retry_after, safe_next
from monitor.web.templating import render


@public
async def login_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if await current_user(request) is not None:
        return RedirectResponse(target, 303)
    return render(request, "login.html", {"next": target, "name": "", "error": None})


@public
async def login_submit(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("name") or "").strip(), str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""))
    throttle = request.app.state.throttle
    client = request.client.host if request.client else ""
    keys = ((name.casefold(), client), ("", client))  # this name from this address; this address, any name
    wait = max(throttle.wait(key, time.monotonic()) for key in keys)
    if wait > 0:  # refused without looking at the password: guessing gets no faster by trying
        seconds = retry_after(wait)
        return render(request, "login.html", {"next": target, "name": name,
                                              "error": f"失败次数过多，请 {seconds} 秒后再试。"},
                      status=429, headers={"Retry-After": str(seconds)})
    # Counted as a failure until proven otherwise: guesses sent in parallel cannot all pass the check above.
    for key in keys:
        throttle.failed(key, time.monotonic())
    user = None
    if name and password:
        user = await run_in_threadpool(user_service.authenticate, context(request), name, password, now=now())
    if user is None:
        return render(request, "login.html", {"next": target, "name": name, "error": "用户名或密码错误。"},
                      status=401)
    for key in keys:
        throttle.succeeded(key)
    log_in(request, user)
    return RedirectResponse(target, 303)


@public
async def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/login", 303)


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
