"""RSS/Atom source and the HTTP layer, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.core.errors import FetchError, ParseError
from sources.base import SourceState
from sources.http import safe_url
from sources.registry import SOURCES
from sources.rss import RssSource, RssSourceConfig, parse_feed
from tests.servers import LocalServer, Request, Response

FEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
RSS_TYPE = "application/rss+xml; charset=utf-8"


def feed_bytes(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def make_source(url: str, **settings) -> RssSource:
    return RssSource(RssSourceConfig(name="weibo-kw", type="rss", url=url, **settings))


def serve(body: bytes, content_type: str | None = RSS_TYPE, **kw):
    headers = {"Content-Type": content_type} if content_type else {}
    return LocalServer(lambda req: Response(200, body, headers, **kw))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- parsing real formats over HTTP -------------------------------------------


def test_rsshub_weibo_feed_oldest_first_with_chinese_text():
    with serve(feed_bytes("weibo_keyword_rsshub.xml")) as server:
        source = make_source(server.url + "/weibo/keyword/星河手机")
        try:
            result = source.fetch(SourceState())
        finally:
            source.close()

    assert not result.not_modified and result.skipped == []
    assert [i.external_id for i in result.items] == [
        "https://weibo.com/7734567890/OcAaKlMn3",  # 09:05 +0800
        "https://weibo.com/5512345678/OcAbCdEf1",  # 12:20 +0800
        "https://weibo.com/6623456789/OcAbGhIj2",  # 04:25 GMT
    ]
    assert [i.published_at for i in result.items] == [
        utc(2024, 5, 6, 1, 5, 44), utc(2024, 5, 6, 4, 20, 31), utc(2024, 5, 6, 4, 25, 2)
    ]
    first_angry = result.items[1]
    assert first_angry.title == "星河手机X5充电半小时就烫手，售后还说正常？[怒][怒]"
    assert first_angry.author == "数码小白兔"
    assert first_angry.url == "https://weibo.com/5512345678/OcAbCdEf1"
    assert "客服电话打了三次都没人接" in first_angry.text and "<br" in first_angry.text
    assert "//" in result.items[2].text and "@数码小白兔" in result.items[2].text

    req = server.requests[0]
    assert req.headers["user-agent"].startswith("yuqing-sentinel/")
    assert "gzip" in req.headers["accept-encoding"]
    assert "application/rss+xml" in req.headers["accept"]


def test_atom_feed_prefers_content_and_published():
    with serve(feed_bytes("atom_sample.xml"), "application/atom+xml") as server:
        result = make_source(server.url + "/atom.xml").fetch(SourceState())

    assert [i.title for i in result.items] == ["星河科技2024年第一季度财报", "关于X5发热问题的说明"]
    report, statement = result.items
    assert report.published_at == utc(2024, 4, 28, 8, 0)  # only <updated>
    assert statement.published_at == utc(2024, 5, 6, 1, 30)  # <published>, not <updated>
    assert statement.external_id == "tag:news.example.cn,2024-05-06:/x5-statement"
    assert statement.author == "星河科技"
    assert "经检测属于正常范围" in statement.text  # <content>, not the shorter <summary>
    assert report.text == "营收同比增长12%。"


@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/xml; charset=GBK"])
def test_gbk_feed_is_decoded(content_type):
    body = feed_bytes("gbk_forum.xml")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")  # the fixture really is GBK
    with serve(body, content_type) as server:
        result = make_source(server.url + "/forum.xml").fetch(SourceState())

    assert [i.title for i in result.items] == ["求推荐两千元左右的手机", "星河X5发热严重，有没有人一起维权？"]
    assert result.items[1].text.startswith("买了不到一个月，充电时背面烫得拿不住。")
    assert result.items[1].author == "老张"
    # no <guid>: the link is the id
    assert result.items[1].external_id == "http://bbs.example.cn/thread-88001-1-1.html"


def test_gzip_encoded_feed_and_redirect_are_followed():
    body = gzip.compress(feed_bytes("atom_sample.xml"))

    def handler(req: Request) -> Response:
        if req.path == "/old":
            return Response(301, headers={"Location": "/new.xml"})
        assert "gzip" in req.headers["accept-encoding"]
        return Response(200, body, {"Content-Type": "application/atom+xml", "Content-Encoding": "gzip"})

    with LocalServer(handler) as server:
        result = make_source(server.url + "/old").fetch(SourceState())
    assert len(result.items) == 2
    assert [r.path for r in server.requests] == ["/old", "/new.xml"]


def test_configured_headers_are_sent_and_win_over_defaults():
    with serve(feed_bytes("atom_sample.xml")) as server:
        make_source(server.url, headers={"Accept": "application/atom+xml", "X-Token": "t0k"},
                    user_agent="custom/1.0").fetch(SourceState())
    req = server.requests[0]
    assert req.headers["accept"] == "application/atom+xml"
    assert req.headers["x-token"] == "t0k" and req.headers["user-agent"] == "custom/1.0"


# --- conditional GET ------------------------------------------------------------


def test_etag_and_last_modified_round_trip_to_304():
    lm = "Mon, 06 May 2024 04:31:07 GMT"
    body = feed_bytes("weibo_keyword_rsshub.xml")

    def handler(req: Request) -> Response:
        if req.headers.get("if-none-match") == '"v1"':
            return Response(304, headers={"ETag": '"v1"'})
        return Response(200, body, {"Content-Type": RSS_TYPE, "ETag": '"v1"', "Last-Modified": lm})

    with LocalServer(handler) as server:
        source = make_source(server.url + "/feed")
        start = SourceState(cursor="kept")
        first = source.fetch(start)
        second = source.fetch(first.state)

    assert len(first.items) == 3
    assert first.state == SourceState(cursor="kept", etag='"v1"', last_modified=lm)
    assert "if-none-match" not in server.requests[0].headers
    assert server.requests[1].headers["if-none-match"] == '"v1"'
    assert server.requests[1].headers["if-modified-since"] == lm
    assert second.not_modified is True
    assert second.items == [] and second.state == first.state


def test_last_modified_only_server():
    lm = "Sun, 05 May 2024 10:00:00 GMT"
    body = feed_bytes("atom_sample.xml")

    def handler(req: Request) -> Response:
        if req.headers.get("if-modified-since") == lm:
            return Response(304)
        return Response(200, body, {"Last-Modified": lm})

    with LocalServer(handler) as server:
        source = make_source(server.url)
        first = source.fetch(SourceState())
        second = source.fetch(first.state)
    assert first.state.etag is None and first.state.last_modified == lm
    assert second.not_modified and second.state == first.state


# --- failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "HTTP 500 Internal Server Error"), (503, "HTTP 503 Service Unavailable"), (404, "HTTP 404 Not Found")],
)
def test_http_error_status(status, reason):
    with LocalServer(lambda req: Response(status, b"oops")) as server:
        source = make_source(server.url + "/feed", headers={"Cookie": "SUB=very-secret-cookie"})
        with pytest.raises(FetchError) as info:
            source.fetch(SourceState())
    assert info.value.status == status
    assert info.value.reason == reason
    assert info.value.source == "weibo-kw"
    assert server.requests[0].headers["cookie"] == "SUB=very-secret-cookie"
    assert "very-secret-cookie" not in str(info.value)
    assert "very-secret-cookie" not in repr(source.config)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_connection_refused_names_url_without_secrets():
    port = _closed_port()
    source = make_source(f"http://bob:hunter2@127.0.0.1:{port}/feed?key=abc123&q=x")
    with pytest.raises(FetchError) as info:
        source.fetch(SourceState())
    assert info.value.reason.startswith(f"connection refused: http://bob:***@127.0.0.1:{port}/feed?")
    assert "hunter2" not in str(info.value) and "abc123" not in str(info.value)
    assert "q=x" in info.value.reason
    assert info.value.status is None


def test_timeout():
    with serve(feed_bytes("atom_sample.xml"), delay=2.0) as server:
        source = make_source(server.url, timeout="0.5s")
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            source.fetch(SourceState())
        elapsed = time.monotonic() - started
    assert info.value.reason == "timed out after 0.5s"
    assert elapsed < 1.8


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (feed_bytes("html_page.html"), "text/html; charset=utf-8", "not a feed: "),
        (feed_bytes("broken_truncated.xml"), RSS_TYPE, "not a feed: "),
        (b"", RSS_TYPE, "not a feed: empty body"),
        (b"   \n", RSS_TYPE, "not a feed: empty body"),
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>hi</p></body></html>',
         "application/xml", "not a feed: no RSS or Atom root element"),
    ],
    ids=["html", "truncated", "empty", "blank", "xhtml"],
)
def test_not_a_feed_is_parse_error(body, content_type, expected):
    with serve(body, content_type) as server:
        with pytest.raises(ParseError) as info:
            make_source(server.url).fetch(SourceState())
    assert info.value.reason.startswith(expected)
    assert len(info.value.reason) > len("not a feed: ")


def test_truncated_after_complete_items_keeps_them():
    body = feed_bytes("weibo_keyword_rsshub.xml")
    cut = body.index(b"</item>") + len(b"</item>") + 20
    items, skipped = parse_feed("t", body[:cut])
    assert [i.external_id for i in items] == ["https://weibo.com/5512345678/OcAbCdEf1"]


def test_oversize_body_refused_by_content_length():
    body = feed_bytes("weibo_keyword_rsshub.xml")
    assert len(body) > 1000
    with serve(body) as server:
        with pytest.raises(FetchError) as info:
            make_source(server.url, max_bytes=1000).fetch(SourceState())
    assert "max_bytes 1000" in info.value.reason
    assert info.value.reason.startswith("response too large")


def test_oversize_body_refused_while_streaming_decoded_bytes():
    # 200 kB of feed compresses to far less than the limit: only counting the
    # decoded stream catches it.
    filler = b"<!-- " + b"x" * 200_000 + b" -->"
    body = gzip.compress(feed_bytes("atom_sample.xml").replace(b"<entry>", filler + b"<entry>", 1))
    assert len(body) < 5000
    with LocalServer(lambda req: Response(200, body, {"Content-Encoding": "gzip"})) as server:
        with pytest.raises(FetchError) as info:
            make_source(server.url, max_bytes=5000).fetch(SourceState())
    assert "exceeds max_bytes 5000" in info.value.reason


# --- entry handling -------------------------------------------------------------

_NO_IDS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>t</title>
<item><title>第一条</title><description>没有链接也没有guid</description></item>
<item><title>第二条</title><description>另一条内容</description></item>
<item><description></description></item>
<item><link>https://example.cn/only-link</link><title>只有链接</title></item>
</channel></rss>"""


def test_entries_without_id_get_stable_derived_ids_and_empty_entries_are_skipped():
    items, skipped = parse_feed("t", _NO_IDS.encode())
    again, _ = parse_feed("t", _NO_IDS.encode())
    by_title = {i.title: i.external_id for i in items}
    assert set(by_title) == {"第一条", "第二条", "只有链接"}
    assert by_title["第一条"].startswith("sha1:") and len(by_title["第一条"]) == 5 + 40
    assert by_title["第一条"] != by_title["第二条"]
    assert by_title["只有链接"] == "https://example.cn/only-link"
    assert [i.external_id for i in again] == [i.external_id for i in items]
    assert skipped == ["entry 2: has neither title nor text"]
    assert all(i.published_at is None for i in items)


def test_valid_feed_without_entries_is_empty_not_error():
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert parse_feed("t", body) == ([], [])


# --- config -------------------------------------------------------------------


def test_config_defaults_and_validation():
    cfg = RssSourceConfig(name="a", type="rss", url="https://rsshub.app/weibo/keyword/x")
    assert cfg.timeout == timedelta(seconds=10)
    assert cfg.max_bytes == 10 * 1024 * 1024
    assert cfg.user_agent.startswith("yuqing-sentinel/")
    with pytest.raises(ValidationError):
        RssSourceConfig(name="a", type="rss", url="ftp://example.cn/feed")
    with pytest.raises(ValidationError):
        RssSourceConfig(name="a", type="rss", url="https://x.cn", max_bytes=0)
    assert SOURCES.get("rss") is RssSource


def test_safe_url_masks_secrets_only():
    assert safe_url("https://rsshub.app/weibo?key=s3cret&limit=5") == "https://rsshub.app/weibo?key=***&limit=5"
    assert safe_url("https://rsshub.app/a/b") == "https://rsshub.app/a/b"
    assert safe_url("http://u:p@h/x") == "http://u:***@h/x"
