"""Every "bad input" of issue #3 against real servers on 127.0.0.1, through the pipeline:
a clear per-source error in the log and in source state, the cursor not moved past
unprocessed items, the other source unaffected, nothing already stored lost."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from monitor.storage import repo
from monitor.storage.models import MentionRow, SourceStateRow
from tests.factories import T0
from tests.servers import LocalServer, Request, Response
from tests.source_helpers import RSS_TYPE, Clock, feed_bytes, make_pipeline

GOOD_RSS = feed_bytes("weibo_keyword_rsshub.xml")
GOOD_JSON = json.dumps({"data": [{"id": "j1", "text": "星河手机还行", "published_at": "2024-05-06T12:00:00+08:00"},
                                 {"id": "j2", "text": "星河手机X5烫", "published_at": "2024-05-06T12:05:00+08:00"}]},
                       ensure_ascii=False).encode()
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<rss version="2.0"><channel><title>&d;</title><item><title>&d;</title><guid>x</guid></item></channel></rss>"""

# fault name -> (source type, response while broken, expected reason prefix)
FAULTS = {
    "invalid-xml": ("rss", Response(200, b"<rss><channel><item><title>a</titl></chanel>>>", {"Content-Type": RSS_TYPE}),
                    "not a feed: "),
    "html-instead-of-feed": ("rss", Response(200, feed_bytes("html_page.html"), {"Content-Type": "text/html"}),
                             "not a feed: "),
    "empty-body": ("rss", Response(200, b""), "not a feed: empty body"),
    "entity-bomb": ("rss", Response(200, BOMB, {"Content-Type": RSS_TYPE}),
                    "refused: the document type declares XML entities"),
    "truncated-json": ("json_api", Response(200, GOOD_JSON[:-25]), "not JSON: truncated after"),
    "html-instead-of-json": ("json_api", Response(200, b"<!DOCTYPE html><html><body>login</body></html>"),
                             "not JSON: got an HTML page"),
    "5xx": ("rss", Response(500, b"oops"), "HTTP 500 Internal Server Error"),
    "timeout": ("rss", Response(200, GOOD_RSS, delay=2.0), "timed out after 0.5s"),
}


def source_config(kind: str, url: str) -> dict:
    base = {"name": "faulty", "url": url, "timeout": "0.5s", "retries": 0}
    if kind == "json_api":
        return base | {"type": "json_api", "items": "data"}
    return base | {"type": "rss"}


def state_of(db, name: str) -> SourceStateRow:
    with db.session() as s:
        row = s.get(SourceStateRow, name)
        s.expunge(row)
        return row


def stored(db) -> dict[str, int]:
    with db.session() as s:
        return dict(s.execute(select(MentionRow.source, func.count()).group_by(MentionRow.source)).all())


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_reported_per_source_and_loses_nothing(db, fault, caplog):
    kind, broken, reason = FAULTS[fault]
    good = Response(200, GOOD_JSON if kind == "json_api" else GOOD_RSS, {"ETag": '"v1"'})
    mode = {"broken": False}

    def faulty(req: Request) -> Response:
        return broken if mode["broken"] else good

    with LocalServer(faulty) as bad_server, LocalServer(lambda req: Response(200, feed_bytes("atom_sample.xml"))) as ok:
        clock = Clock(T0)
        pipeline = make_pipeline(db, [source_config(kind, bad_server.url + "/x"),
                                      {"name": "other", "type": "rss", "url": ok.url}], clock=clock)
        first = pipeline.poll("faulty").stored
        assert first == (2 if kind == "json_api" else 3)
        before = state_of(db, "faulty")
        mode["broken"] = True
        clock.advance(minutes=1)
        with caplog.at_level(logging.ERROR, logger="monitor.app.pipeline"):
            report = pipeline.poll("faulty")
        other = pipeline.poll("other")

    assert report.error is not None and report.error.startswith(reason), report.error
    assert report.stored == 0
    assert any(f"[source=faulty stage=fetch] {report.error}" in r.getMessage() for r in caplog.records)
    after = state_of(db, "faulty")
    assert after.last_error == report.error and after.consecutive_failures == 1
    assert (after.cursor, after.etag, after.last_modified) == (before.cursor, before.etag, before.last_modified)
    assert after.last_success_at == before.last_success_at and after.items_stored == first
    assert other.error is None and other.stored == 2  # the other source is unaffected
    assert stored(db) == {"faulty": first, "other": 2}  # nothing already stored is lost


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_connection_refused(db):
    pipeline = make_pipeline(db, [{"name": "faulty", "type": "rss", "url": f"http://127.0.0.1:{_closed_port()}/f",
                                   "retries": 0}])
    report = pipeline.poll("faulty")
    assert report.error.startswith("connection refused: http://127.0.0.1:")
    assert state_of(db, "faulty").last_error == report.error and stored(db) == {}


class _Streaming:
    """A server that sends ``total`` bytes of feed-looking XML, counting what it managed to write."""

    def __init__(self, total: int, declare_length: bool):
        self.sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", RSS_TYPE)
                if declare_length:
                    self.send_header("Content-Length", str(total))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"<!-- " + b"x" * 65526 + b" -->"
                try:
                    self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
                    while outer.sent < total:
                        self.wfile.write(chunk)
                        outer.sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/feed"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "streamed"])
def test_50mb_body_is_refused_without_loading_it(db, declare_length):
    server = _Streaming(50 * 1024 * 1024, declare_length)
    try:
        pipeline = make_pipeline(db, [{"name": "faulty", "type": "rss", "url": server.url, "retries": 0}])
        report = pipeline.poll("faulty")
    finally:
        server.close()
    assert report.error.startswith("response too large: ")
    assert "max_bytes 10485760" in report.error
    assert server.sent < 20 * 1024 * 1024  # the client stopped reading long before 50 MB
    assert state_of(db, "faulty").consecutive_failures == 1


def test_wrong_charset_is_detected_not_garbled(db):
    text = "星河手机X5发热严重，有没有人一起维权？"
    gbk = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>论坛</title>'
           f"<item><title>{text}</title><guid>t1</guid></item></channel></rss>").encode("gb18030")
    big5 = ('<rss version="2.0"><channel><title>論壇</title><item><title>星河手機X5發熱嚴重，有沒有人一起維權？'
            "充電時背面燙得拿不住，客服電話打了三次都沒人接。</title><guid>t2</guid></item></channel></rss>").encode("big5")
    with LocalServer(lambda req: Response(200, gbk if req.path == "/gbk" else big5,
                                          {"Content-Type": "application/rss+xml; charset=utf-8"})) as server:
        pipeline = make_pipeline(db, [{"name": "gbk", "type": "rss", "url": server.url + "/gbk"},
                                      {"name": "big5", "type": "rss", "url": server.url + "/big5"}])
        assert pipeline.poll("gbk").stored == 1 and pipeline.poll("big5").stored == 1
    with db.session() as s:
        titles = dict(s.execute(select(MentionRow.source, MentionRow.title)).all())
    assert titles["gbk"] == text
    assert titles["big5"].startswith("星河手機X5發熱嚴重，有沒有人一起維權？")


def test_items_without_id_or_text_and_future_timestamps(db, caplog):
    body = ('<rss version="2.0"><channel><title>t</title>'
            "<item><title>没有 guid 也没有链接的帖子</title></item>"
            "<item><guid>empty</guid><description>   </description></item>"
            "<item><guid>far</guid><title>时间写成了2099年</title><pubDate>Thu, 01 Jan 2099 00:00:00 +0800</pubDate></item>"
            "<item><guid>soon</guid><title>时间快了两小时</title><pubDate>Tue, 11 Jun 2024 14:00:00 +0800</pubDate></item>"
            "</channel></rss>").encode()
    with LocalServer(lambda req: Response(200, body, {"Content-Type": RSS_TYPE})) as server:
        pipeline = make_pipeline(db, [{"name": "论坛", "type": "rss", "url": server.url}], clock=Clock(T0))
        with caplog.at_level(logging.WARNING, logger="monitor.app.pipeline"):
            report = pipeline.poll("论坛")
    assert report.error is None and report.stored == 3
    assert report.skipped == ["entry 1: has neither title nor text"]
    assert any("(e.g. entry 1: has neither title nor text)" in r.getMessage() and "[source=论坛 stage=normalise]" in r.getMessage()
               for r in caplog.records)
    with db.session() as s:
        rows = {r.external_id: r for r in s.scalars(select(MentionRow))}
        assert state_of(db, "论坛").consecutive_failures == 0
    assert next(k for k in rows if k.startswith("sha1:"))  # a stable id derived from the content
    assert rows["far"].published_at == T0  # bogus: clamped to the fetch time
    assert rows["soon"].published_at == datetime(2024, 6, 11, 6, 0, tzinfo=timezone.utc)  # kept; rules wait for it


def test_a_crash_between_fetch_and_store_neither_loses_nor_duplicates(db):
    """Items stored but the cursor not advanced (killed in between): the next poll re-fetches, stores nothing twice."""
    with LocalServer(lambda req: Response(200, GOOD_JSON)) as server:
        pipeline = make_pipeline(db, [source_config("json_api", server.url)])
        source = pipeline.sources["faulty"]
        with db.session() as s:
            fetched = source.fetch(repo.load_source_state(s, "faulty"))
        from sources.normalise import normalise

        mentions = [normalise(i, source="faulty", tz="Asia/Shanghai", fetched_at=T0) for i in fetched.items[:1]]
        with db.session() as s:
            repo.insert_mentions(s, mentions)  # ... and the process dies before record_poll_success
        report = pipeline.poll("faulty")
    assert report.fetched == 2 and report.stored == 1
    assert stored(db) == {"faulty": 2}
