"""The daemon's one listener (uvicorn) serves the console beside webhook intake, /healthz and /metrics:
pushes need no session or CSRF token (they carry their own), a burst of 200 concurrent pushes is
accepted on the first try, /metrics can require a bearer token, and a stop is graceful."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.app.pipeline import Pipeline
from monitor.storage.models import MentionRow
from monitor.web.app import create_app
from tests.source_helpers import KeywordScorer
from tests.web_helpers import PASSWORD, csrf_of

CONFIG = """
data_dir: {data_dir}
http: {{bind: "127.0.0.1:0"}}
console: {{metrics_token: scrape-me}}
sources:
  - name: 客服推送
    type: webhook
    path: /ingest/kefu
    token: s3cret-token
    fields: {{id: ticket_id, text: content}}
topics:
  - {{name: 星河手机, keywords: [星河]}}
"""
AUTH = {"Authorization": "Bearer s3cret-token"}


@pytest.fixture
def daemon(db, tmp_path):
    config = parse_config(CONFIG.format(data_dir=tmp_path))
    d = Daemon(config, db=db, pipeline=Pipeline(config, db, scorer=KeywordScorer(), channels=[]), web=create_app)
    d.start()
    try:
        yield d
    finally:
        assert d.stop(grace=timedelta(seconds=5))


def stored(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(MentionRow))


def test_one_listener_serves_console_pushes_health_and_metrics(daemon, db):
    from monitor.app.service import Context, users
    from monitor.app.pipeline import utcnow

    url = daemon.httpd.url
    login = httpx.get(url + "/login")
    assert login.status_code == 200 and "登录" in login.text
    assert login.headers["content-security-policy"].startswith("default-src 'self'")
    push = httpx.post(url + "/ingest/kefu", json={"ticket_id": "T-1", "content": "星河手机发烫"}, headers=AUTH)
    assert push.status_code == 200 and push.json()["stored"] == 1  # no session, no CSRF token: its own token
    assert httpx.get(url + "/ingest/kefu").status_code == 405
    assert httpx.get(url + "/healthz").json()["status"] == "ok"
    assert httpx.get(url + "/metrics").status_code == 401
    assert httpx.get(url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    metrics = httpx.get(url + "/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert metrics.status_code == 200 and "yuqing_mentions_stored_total" in metrics.text

    users.add(Context(daemon.config, db), "小王", PASSWORD, role="responder", now=utcnow())
    with httpx.Client(base_url=url) as client:
        token = csrf_of(client.get("/login").text)
        resp = client.post("/login", data={"name": "小王", "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 303
        assert client.get("/").headers["location"] == "/incidents"


def test_200_concurrent_pushes_are_all_stored_once_on_the_first_try(daemon, db):
    url = daemon.httpd.url + "/ingest/kefu"

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            return await asyncio.gather(*(client.post(url, json={"ticket_id": f"T-{i}", "content": f"星河手机第{i}台坏了"},
                                                      headers=AUTH) for i in range(200)))

    started = time.monotonic()
    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 200
    assert all(r.json()["stored"] == 1 for r in responses)
    assert stored(db) == 200
    print(f"200 concurrent pushes stored in {time.monotonic() - started:.2f}s")


def test_stop_lets_a_push_in_flight_finish(daemon, db):
    slow_started = threading.Event()
    ingest = daemon.pipeline.ingest

    def slow_ingest(*args, **kwargs):
        slow_started.set()
        time.sleep(1.0)
        return ingest(*args, **kwargs)

    daemon.pipeline.ingest = slow_ingest
    result: dict = {}

    def push():
        result["resp"] = httpx.post(daemon.httpd.url + "/ingest/kefu", json={"ticket_id": "T-slow", "content": "星河"},
                                    headers=AUTH, timeout=10)

    sender = threading.Thread(target=push)
    sender.start()
    assert slow_started.wait(5)
    assert daemon.stop(grace=timedelta(seconds=5))
    sender.join(5)
    assert result["resp"].status_code == 200 and result["resp"].json()["stored"] == 1
    assert stored(db) == 1
    daemon.stop = lambda grace=None: True  # already stopped (the fixture's stop)


def test_without_console_section_the_console_is_not_served(db, tmp_path):
    config = parse_config(f'data_dir: {tmp_path}\nhttp: {{bind: "127.0.0.1:0"}}\n')
    d = Daemon(config, db=db, pipeline=Pipeline(config, db, scorer=KeywordScorer(), channels=[]), web=create_app)
    d.start()
    try:
        assert httpx.get(d.httpd.url + "/login").status_code == 404
        assert httpx.get(d.httpd.url + "/metrics").status_code == 200  # no token configured
    finally:
        assert d.stop(grace=timedelta(seconds=2))


def test_a_reload_reaches_the_consoles_services(db, tmp_path):
    """After SIGHUP the console's actions (escalate now, the topic list) use the new config, not the one it started with."""
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG.format(data_dir=tmp_path), encoding="utf-8")
    from monitor.app.config import load_config

    d = Daemon(load_config(path), db=db, config_path=path, web=create_app)
    d.start()
    try:
        assert [t.name for t in d._console_app.state.ctx.config.topics] == ["星河手机"]
        path.write_text(CONFIG.format(data_dir=tmp_path) + "  - {name: 鲜丰奶茶, keywords: [鲜丰]}\n", encoding="utf-8")
        assert d.reload()
        assert [t.name for t in d._console_app.state.ctx.config.topics] == ["星河手机", "鲜丰奶茶"]
    finally:
        assert d.stop(grace=timedelta(seconds=5))
