"""The webhook push intake through a real daemon listening on 127.0.0.1: token and HMAC
authentication (401 otherwise), items stored before the answer, duplicates, bad bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.app.httpd import HttpServer, Request, Response
from monitor.storage.models import MentionRow, SourceStateRow
from tests.source_helpers import KeywordScorer

CONFIG = """
data_dir: {data_dir}
http: {{bind: "127.0.0.1:0"}}
sources:
  - name: 客服推送
    type: webhook
    path: /ingest/kefu
    token: s3cret-token
    hmac_secret: hmac-key
    fields: {{id: ticket_id, text: content, author: customer.name, published_at: created_at, parent_id: reply_to}}
topics:
  - {{name: 星河手机, keywords: [星河]}}
"""


@pytest.fixture
def daemon(db, tmp_path):
    from monitor.app.pipeline import Pipeline

    config = parse_config(CONFIG.format(data_dir=tmp_path))
    d = Daemon(config, db=db, pipeline=Pipeline(config, db, scorer=KeywordScorer(), channels=[]))
    d.start()
    try:
        yield d
    finally:
        assert d.stop(grace=timedelta(seconds=5))


def count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(MentionRow))


def signed(body: bytes, key: str = "hmac-key", stamp: str | None = None) -> dict[str, str]:
    payload = body if stamp is None else stamp.encode() + b"." + body
    headers = {"X-Yuqing-Signature": "sha256=" + hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()}
    if stamp is not None:
        headers["X-Yuqing-Timestamp"] = stamp
    return headers


TICKET = {"ticket_id": "T-1001", "content": "星河手机X5充电发烫，要求退款", "customer": {"name": "王女士"},
          "created_at": "2024-05-06 12:00:00"}


def test_token_push_is_stored_before_the_answer(daemon, db):
    url = daemon.httpd.url + "/ingest/kefu"
    resp = httpx.post(url, json=TICKET, headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"received": 1, "stored": 1, "duplicates": 0, "skipped": []}
    with db.session() as s:  # committed by the time the sender got 200
        [row] = s.scalars(select(MentionRow))
        assert (row.source, row.external_id, row.author) == ("客服推送", "T-1001", "王女士")
        assert row.topics == ["星河手机"] and row.sentiment_label == "negative"
        state = s.get(SourceStateRow, "客服推送")
        assert state.items_stored == 1 and state.last_item_at is not None

    again = httpx.post(url, json={"items": [TICKET, {**TICKET, "ticket_id": "T-1002", "reply_to": "T-1001",
                                                         "content": "已联系用户处理"}]},
                       headers={"X-Yuqing-Token": "s3cret-token"})
    assert again.json() == {"received": 2, "stored": 1, "duplicates": 1, "skipped": []}
    with db.session() as s:
        assert s.scalar(select(MentionRow.parent_id).where(MentionRow.external_id == "T-1002")) == "T-1001"


def test_hmac_signed_push_with_and_without_timestamp(daemon, db):
    url = daemon.httpd.url + "/ingest/kefu"
    body = json.dumps([TICKET], ensure_ascii=False).encode()
    assert httpx.post(url, content=body, headers=signed(body)).status_code == 200
    body2 = json.dumps({**TICKET, "ticket_id": "T-2"}, ensure_ascii=False).encode()
    ok = httpx.post(url, content=body2, headers=signed(body2, stamp=str(int(time.time()))))
    assert ok.status_code == 200 and ok.json()["stored"] == 1
    stale = httpx.post(url, content=body2, headers=signed(body2, stamp=str(int(time.time()) - 3600)))
    assert stale.status_code == 401
    assert count(db) == 2


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong"},
    {"X-Yuqing-Token": ""},
    {"X-Yuqing-Signature": "sha256=" + "0" * 64},
    {"X-Yuqing-Signature": "sha256=deadbeef", "Authorization": "Basic czNjcmV0LXRva2Vu"},
], ids=["none", "wrong-token", "empty-token", "bad-signature", "basic-auth"])
def test_unauthenticated_pushes_get_401_and_change_nothing(daemon, db, headers):
    body = json.dumps(TICKET, ensure_ascii=False).encode()
    resp = httpx.post(daemon.httpd.url + "/ingest/kefu", content=body, headers=headers)
    assert resp.status_code == 401 and resp.json() == {"error": "unauthorized"}
    assert count(db) == 0
    with db.session() as s:
        assert s.get(SourceStateRow, "客服推送") is None


def test_bad_bodies_are_400_and_recorded_as_failures(daemon, db):
    url = daemon.httpd.url + "/ingest/kefu"
    auth = {"Authorization": "Bearer s3cret-token"}
    truncated = httpx.post(url, content='{"ticket_id": "T-9", "content": "星'.encode(), headers=auth)
    assert truncated.status_code == 400 and truncated.json()["error"].startswith("not JSON: truncated")
    no_text = httpx.post(url, json=[{"ticket_id": "T-8"}, TICKET], headers=auth)
    assert no_text.json() == {"received": 2, "stored": 1, "duplicates": 0,
                              "skipped": ["item 0: item 'T-8': missing text ('content')"]}
    with db.session() as s:
        state = s.get(SourceStateRow, "客服推送")
        assert state.consecutive_failures == 0  # the good push after the bad one succeeded
        assert state.last_error_at is not None
    assert httpx.get(url).status_code == 405
    assert httpx.post(daemon.httpd.url + "/ingest/other", json=TICKET, headers=auth).status_code == 404


def test_webhook_config_needs_a_secret():
    from monitor.core.errors import ConfigError

    with pytest.raises(ConfigError, match="needs 'token' or 'hmac_secret'"):
        parse_config("sources:\n  - {name: x, type: webhook}\n")


def test_http_server_routes_limits_and_errors():
    def boom(req: Request) -> Response:
        raise RuntimeError("bug")

    server = HttpServer("127.0.0.1:0", max_body=100)
    server.add_route("POST", "/echo", lambda req: Response(200, req.body))
    server.add_route("GET", "/boom", boom)
    with pytest.raises(ValueError):
        server.add_route("POST", "/echo", lambda req: Response())
    server.start()
    try:
        assert httpx.post(server.url + "/echo", content=b"hi").content == b"hi"
        assert httpx.post(server.url + "/echo", content=b"x" * 101).status_code == 413
        assert httpx.get(server.url + "/boom").status_code == 500
        assert httpx.get(server.url + "/nowhere").status_code == 404
        assert httpx.delete(server.url + "/echo").headers["allow"] == "POST"
    finally:
        server.stop()


def test_a_push_that_cannot_be_stored_gets_503_so_the_sender_retries(daemon, db, monkeypatch):
    from monitor.core.errors import StorageError

    def broken(name, result, report=None):
        raise StorageError("database is locked")

    monkeypatch.setattr(daemon.pipeline, "ingest", broken)
    resp = httpx.post(daemon.httpd.url + "/ingest/kefu", json=TICKET, headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status_code == 503 and resp.headers["retry-after"] == "10"
    assert resp.json() == {"error": "not stored, please retry"}
    monkeypatch.undo()
    retried = httpx.post(daemon.httpd.url + "/ingest/kefu", json=TICKET, headers={"Authorization": "Bearer s3cret-token"})
    assert retried.json()["stored"] == 1 and count(db) == 1
