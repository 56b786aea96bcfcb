"""The web console on a real uvicorn listener on 127.0.0.1, and a logged-in httpx client, for tests.

    with Console(db, tmp_path) as console:              # users: viewer, responder, admin (password PASSWORD)
        client = console.login("responder")             # httpx.Client with the session cookie
        client.post("/incidents/1/ack", data=console.form(client))   # form(): the CSRF field
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from monitor.app.config import parse_config
from monitor.app.httpd import HttpServer
from monitor.app.service import Context
from monitor.app.service import users
from monitor.web.app import Settings, create_app

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRF-Token": "([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page: a form's hidden field, or the ``hx-headers`` of <body>."""
    match = CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1) or match.group(2)


class Console:
    def __init__(self, db, tmp_path: Path, *, config: str = "", settings: Settings | None = None,
                 roles: tuple[str, ...] = ("viewer", "responder", "admin")):
        self.config = parse_config(f"data_dir: {tmp_path}\n{config}")
        self.ctx = Context(self.config, db)
        now = datetime.now(timezone.utc)
        existing = {u.name for u in users.listing(self.ctx)}
        for role in roles:  # one user per role, named after it
            if role not in existing:
                users.add(self.ctx, role, PASSWORD, role=role, now=now)
        self.settings = settings
        self.app: Any = None
        self.server = HttpServer("127.0.0.1:0", app_factory=self._factory)

    def _factory(self, routes):
        self.app = create_app(self.ctx, settings=self.settings)
        return self.app

    def __enter__(self) -> "Console":
        self.server.start()
        self.url = self.server.url
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(timeout=2)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        resp = self.try_login(client, name, password)
        assert resp.status_code == 303, resp.text
        return client

    def try_login(self, client: httpx.Client, name: str, password: str, next_: str = "/") -> httpx.Response:
        token = csrf_of(client.get("/login").text)
        return client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": next_})

    def form(self, client: httpx.Client, **fields: str) -> dict[str, str]:
        """Form fields plus the session's CSRF token (read from a page, as a browser would)."""
        token = csrf_of(client.get("/__no_such_page__").text)  # any page has it (here: the 404 page)
        return {"csrf_token": token, **fields}
