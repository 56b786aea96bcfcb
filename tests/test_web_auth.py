"""The web console's front door, over a real uvicorn listener on 127.0.0.1: login, sessions, roles,
CSRF, security headers, the login throttle."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import httpx
import pytest
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route

from monitor.app.service import users
from monitor.web.app import Settings
from monitor.web.auth import LoginThrottle, require, safe_next
from monitor.web.templating import flash
from tests.web_helpers import PASSWORD, Console, csrf_of


@pytest.fixture
def console(db, tmp_path):
    with Console(db, tmp_path) as c:
        @require("responder")
        def act(request, user):
            return PlainTextResponse(f"done by {user.name}: {request.state.form.get('what')}")

        @require("viewer")
        def note(request, user):
            flash(request, f"已记录 <{request.state.form.get('what')}>")
            return RedirectResponse("/nowhere", 303)

        c.app.router.routes.append(Route("/test/act", act, methods=["POST"]))
        c.app.router.routes.append(Route("/test/note", note, methods=["POST"]))
        yield c


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_listed_route_sends_an_anonymous_visitor_to_login(console):
    client = console.client()
    token = csrf_of(client.get("/login").text)  # an anonymous session with a token: CSRF passes, auth must not
    checked = 0
    for route in console.app.routes:
        if isinstance(route, Mount) or getattr(route.endpoint, "public", False):
            continue
        path = _fill(route.path)
        for method in sorted(route.methods or {"GET"}):
            if method == "HEAD":
                continue
            resp = client.request(method, path, data={"csrf_token": token} if method != "GET" else None)
            assert resp.status_code == 303, (method, path, resp.status_code)
            assert resp.headers["location"].startswith("/login?next="), (method, path)
            checked += 1
    assert checked >= 2  # at least / and the test action
    resp = client.get("/", headers={"HX-Request": "true", "HX-Current-URL": f"{console.url}/incidents?status=open"})
    assert resp.status_code == 401 and resp.headers["hx-redirect"] == "/login?next=/incidents%3Fstatus%3Dopen"
    assert client.get("/", headers={"Accept": "application/json"}).status_code == 401


def test_login_returns_to_where_the_visitor_was_going(console):
    client = console.client()
    assert client.get("/?status=open").headers["location"] == "/login?next=/%3Fstatus%3Dopen"
    resp = console.try_login(client, "responder", PASSWORD, next_="/?status=open")
    assert resp.status_code == 303 and resp.headers["location"] == "/?status=open"
    assert client.get("/").headers["location"] == "/incidents"  # logged in: home is the queue
    assert client.get("/login").status_code == 303


@pytest.mark.parametrize("target, expected", [
    ("/incidents/3", "/incidents/3"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"), ("/\\evil.example", "/"), ("", "/"), (None, "/"),
])
def test_next_is_always_a_local_path(target, expected):
    assert safe_next(target) == expected


def test_wrong_password_and_unknown_user_look_the_same(console):
    client = console.client()
    wrong = console.try_login(client, "responder", "not the password")
    unknown = console.try_login(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    assert "yuqing_session" in client.cookies and client.get("/").status_code == 303


def test_a_post_without_the_csrf_token_is_refused(console):
    client = console.login("admin")
    assert client.post("/test/act", data={"what": "x"}).status_code == 403
    assert client.post("/test/act", data={"what": "x", "csrf_token": "forged"}).status_code == 403
    assert client.post("/logout").status_code == 403
    other = console.login("responder")  # another session's token is not this one's
    assert client.post("/test/act", data=console.form(other, what="x")).status_code == 403
    ok = client.post("/test/act", data=console.form(client, what="ack"))
    assert ok.status_code == 200 and ok.text == "done by admin: ack"
    header = client.post("/test/act", data={"what": "htmx"},
                         headers={"X-CSRF-Token": console.form(client)["csrf_token"], "HX-Request": "true"})
    assert header.status_code == 200 and header.text == "done by admin: htmx"


def test_a_viewer_may_not_act(console):
    viewer = console.login("viewer")
    resp = viewer.post("/test/act", data=console.form(viewer, what="ack"))
    assert resp.status_code == 403 and "权限不足" in resp.text
    responder = console.login("responder")
    assert responder.post("/test/act", data=console.form(responder, what="ack")).status_code == 200


def test_a_flash_message_shows_once_on_the_next_page_escaped(console):
    client = console.login("viewer")
    resp = client.post("/test/note", data=console.form(client, what="<b>x</b>"))
    assert resp.status_code == 303
    page = client.get("/nowhere").text
    assert "已记录 &lt;&lt;b&gt;x&lt;/b&gt;&gt;" in page and "<b>x</b>" not in page
    assert "已记录" not in client.get("/nowhere").text


def test_logout_ends_the_session(console):
    client = console.login("viewer")
    assert client.get("/").status_code == 303 and client.get("/").headers["location"] == "/incidents"
    resp = client.post("/logout", data=console.form(client))
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert client.get("/").headers["location"].startswith("/login")


def test_a_new_password_or_disabling_ends_open_sessions(console):
    client = console.login("responder")
    users.set_password(console.ctx, "responder", "a brand new password")
    assert client.get("/").headers["location"].startswith("/login")
    viewer = console.login("viewer")
    users.disable(console.ctx, "viewer")
    assert viewer.get("/").headers["location"].startswith("/login")
    assert console.try_login(console.client(), "viewer", PASSWORD).status_code == 401


def test_session_cookie_flags_and_security_headers(console):
    client = console.client()
    page = client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "max-age=43200" in cookie  # console.idle_timeout: 12h by default
    for resp in (page, client.get("/"), client.get("/nowhere"), client.get("/static/console.css")):
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and 'src="/static/htmx.min.js"' in page.text


def test_secure_cookie_behind_https(db, tmp_path):
    settings = Settings("s" * 40, public_url="https://yuqing.example.com")
    with Console(db, tmp_path, settings=settings, roles=()) as c:
        assert "secure" in c.client().get("/login").headers["set-cookie"].lower()


def test_idle_sessions_expire(db, tmp_path):
    settings = Settings("s" * 40, idle_timeout=timedelta(seconds=1))
    with Console(db, tmp_path, settings=settings, roles=("viewer",)) as c:
        client = c.login("viewer")
        assert client.get("/").headers["location"] == "/incidents"
        time.sleep(2.2)
        assert client.get("/").headers["location"].startswith("/login")


def test_ten_wrong_passwords_slow_down_the_next_attempt(console):
    client = console.client()
    statuses = [console.try_login(client, "responder", f"wrong {i}").status_code for i in range(10)]
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:]
    resp = console.try_login(client, "responder", PASSWORD)  # even the right password must wait now
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1 and "秒后再试" in resp.text
    assert console.try_login(console.client(), "admin", PASSWORD).status_code == 303  # other names are not held up


def test_parallel_guesses_cannot_slip_past_the_throttle(console):
    client = console.client()
    token = csrf_of(client.get("/login").text)

    async def guesses() -> list[int]:
        async with httpx.AsyncClient(base_url=console.url, cookies=client.cookies, timeout=30) as a:
            responses = await asyncio.gather(*(a.post("/login", data={"name": "admin", "password": f"guess {i}",
                                                                      "csrf_token": token}) for i in range(20)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(guesses())
    assert statuses.count(401) <= 5 and statuses.count(429) >= 15


def test_login_throttle_doubles_the_wait_after_five_failures():
    throttle = LoginThrottle(free=5, base=1.0, cap=60)
    key = ("小王", "10.0.0.1")
    for i in range(5):
        assert throttle.wait(key, 100.0) == 0
        throttle.failed(key, 100.0)
    assert throttle.wait(key, 100.0) == 1.0 and throttle.wait(key, 101.0) == 0
    throttle.failed(key, 101.0)
    assert throttle.wait(key, 101.0) == 2.0
    for _ in range(10):
        throttle.failed(key, 200.0)
    assert throttle.wait(key, 200.0) == 60  # capped
    assert throttle.wait(("小王", "10.0.0.2"), 200.0) == 0  # per client
    throttle.succeeded(key)
    assert throttle.wait(key, 200.0) == 0


def test_login_throttle_forgets_old_keys_when_full():
    throttle = LoginThrottle(max_keys=3, forget=10)
    for i in range(3):
        throttle.failed((f"u{i}", ""), float(i))
    throttle.failed(("new", ""), 100.0)
    assert len(throttle._failures) == 1


def test_login_throttle_also_counts_one_address_across_names():
    throttle = LoginThrottle(free=5, free_per_client=20, base=1.0, cap=60)
    for i in range(20):
        for key in ((f"user{i}", "10.0.0.9"), ("", "10.0.0.9")):
            assert throttle.wait(key, 100.0) == 0
            throttle.failed(key, 100.0)
    assert throttle.wait(("another", "10.0.0.9"), 100.0) == 0  # the name is new …
    assert throttle.wait(("", "10.0.0.9"), 100.0) == 1.0  # … but the address has tried 20 names
    assert throttle.wait(("", "10.0.0.8"), 100.0) == 0


def test_one_password_against_many_names_is_slowed_down(console):
    client = console.client()
    assert all(console.try_login(client, f"猜{i}", "123456").status_code == 401 for i in range(20))
    resp = console.try_login(client, "responder", PASSWORD)  # a name never tried, from the same address
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
