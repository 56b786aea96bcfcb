"""Hostile feeds (issue 10): entity bombs wherever they hide, documents cut mid-character or mid-item,
absurd dates and fields, and warnings that repeat on every poll."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.core.errors import ParseError
from monitor.storage.models import MentionRow
from sources import charset, safexml
from sources.base import RawItem, SourceState
from sources.dedup import Deduper
from sources.file import FileSource, FileSourceConfig
from sources.json_api import JsonApiConfig, JsonApiSource
from sources.jsonfeed import parse_jsonfeed
from sources.jsonl_file import JsonlFileConfig, JsonlFileSource
from sources.logquiet import QuietLog, Throttle, skip_kind
from sources.mapping import FieldMap, RecordMapper
from sources.normalise import normalise
from sources.rss import parse_feed
from tests.factories import T0
from tests.servers import LocalServer, Response
from tests.source_helpers import FEEDS, RSS_TYPE, Clock, feed_bytes, make_pipeline

BIG = "A" * 50_000
REFS = "&a;" * 20
FEED = ("<rss version='2.0'><channel><title>t</title>"
        f"<item><guid>g1</guid><title>标题 {REFS}</title></item></channel></rss>")
REFUSED = "refused: the document type declares XML entities"


def _titles(body: str) -> list[str]:
    items, _ = parse_feed("s", body.encode())
    return [i.title for i in items]


# --- safe XML -------------------------------------------------------------------

XML = '<?xml version="1.0"?>\n'
DECL = f'<!ENTITY a "{BIG}">'
LAUGHS = '<!ENTITY z "zzzzzzzzzz">' + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">'
                                             for p, n in zip("zabcdefg", "abcdefgh"))
BOMBS = {
    "classic": f"{XML}<!DOCTYPE rss [\n{DECL}\n]>\n{FEED}",
    "after a 70 kB comment": f'{XML}<!--{"x" * 70_000}-->\n<!DOCTYPE rss [{DECL}]>{FEED}',
    "] inside a comment of the subset": f"{XML}<!DOCTYPE rss [\n<!-- ] -->\n{DECL}\n]>{FEED}",
    "nested (billion laughs)": f"{XML}<!DOCTYPE rss [{LAUGHS}]>{FEED.replace('&a;', '&h;')}",
    "external (file:///etc/passwd)": f'{XML}<!DOCTYPE rss [<!ENTITY a SYSTEM "file:///etc/passwd">]>{FEED}',
    "parameter entity": f"{XML}<!DOCTYPE rss [<!ENTITY % p \"<!ENTITY a '{BIG}'>\"> %p;]>{FEED}",
    "one line, no newlines": f"{XML.strip()}<!DOCTYPE rss [{DECL}]>{FEED}",
    "malformed after the subset": f"{XML}<!DOCTYPE rss [{DECL}]>{FEED.replace('<title>t', '<title>t & u')}",
    "truncated after the subset": f"{XML}<!DOCTYPE rss [{DECL}]>{FEED[:-30]}",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_entity_declarations_are_refused_wherever_they_are(name):
    with pytest.raises(ParseError) as info:
        parse_feed("s", BOMBS[name].encode())
    assert info.value.reason.startswith(REFUSED)


# Where no parser can tell a declaration from text, feedparser must not find one either: nothing is expanded.
UNVETTABLE = {
    "in a prolog comment, after an external DTD": f'{XML}<!DOCTYPE rss SYSTEM "x.dtd">\n<!--\n{DECL}\n-->\n{FEED}',
    "after a malformed DOCTYPE": f"{XML}<!DOCTYPE rss garbage>\n{DECL}\n{FEED}",
    "after a root element with a Chinese name": f"{XML}<频道>\n<!DOCTYPE rss>\n{DECL}\n</频道>{FEED}",
}


@pytest.mark.parametrize("name", sorted(UNVETTABLE))
def test_entity_text_no_parser_can_vet_is_never_expanded(name):
    [title] = _titles(UNVETTABLE[name])
    assert BIG not in title and len(title) < 100


def test_doctypes_without_entities_still_parse():
    netscape = ('<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n')
    plain = FEED.replace(REFS, "正文")
    assert _titles(netscape + plain) == ["标题 正文"]  # the DTD is skipped, never fetched
    assert _titles('<?xml version="1.0"?><!DOCTYPE rss [<!ELEMENT rss ANY>]>' + plain) == ["标题 正文"]
    cdata = plain.replace("正文", "<![CDATA[ <!ENTITY x 'y'> ]]>")
    assert "!ENTITY x" in _titles(cdata)[0]  # only text: kept (escaped), expands nothing


@pytest.mark.parametrize("name", sorted(p.name for p in FEEDS.glob("*.xml")))
def test_healthy_feeds_reach_feedparser_byte_for_byte(name):
    body = feed_bytes(name)
    vetted = safexml.vet(name, body)
    if name == "broken_truncated.xml":
        assert vetted.complete_entries == 0
    else:
        assert vetted == safexml.Vetted(body, None)


# --- honest decoding ------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_utf8_cut_mid_character_stays_utf8(cut):
    text = "星河手机X5发热严重" * 50 + "𠮷"  # a 4-byte character last
    body = text.encode("utf-8")[:-cut]
    decoded, codec = charset.decode(body, None)
    assert codec == "utf-8" and decoded == text[:-1]
    assert charset.decode(body, "utf-8") == (text[:-1], "utf-8")


def test_gb18030_cut_mid_character_keeps_its_charset():
    text = "星河手机发热严重，客服不理人" * 20
    body = text.encode("gb18030")[:-1]
    assert charset.decode(body, "gbk") == (text[:-1], "gb18030")


def test_a_real_mismatch_in_the_middle_is_still_detected():
    text = "星河手机X5发热严重，有没有人一起维权？充电时背面烫得拿不住。" * 3
    body = text.encode("gb18030") + "结尾".encode("utf-8")[:-1]  # GBK body, a cut UTF-8 tail
    decoded, codec = charset.decode(body, "utf-8")
    assert codec == "gb18030" and decoded.startswith(text)


def _long_feed(n: int) -> bytes:
    items = "".join(f"<item><guid>g{i}</guid><title>第{i}条</title><description>星河手机第{i}条评论，内容完整。"
                    f"</description><pubDate>Tue, 11 Jun 2024 0{i % 10}:00:00 +0800</pubDate></item>" for i in range(n))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>{items}'
            "</channel></rss>").encode()


def test_a_feed_cut_mid_character_inside_an_item_keeps_the_complete_items_only():
    body = _long_feed(4)
    cut = body.index("星河手机第3条".encode()) + 2  # inside 星
    items, skipped = parse_feed("s", body[:cut], content_type=RSS_TYPE)
    assert sorted(i.external_id for i in items) == ["g0", "g1", "g2"]
    assert all("星河手机" in i.text for i in items)  # UTF-8, not GB18030 mojibake
    assert skipped == ["entry 3: cut off (the document ends inside it)"]


def test_a_feed_cut_inside_its_first_item_is_a_parse_error():
    body = _long_feed(2)
    with pytest.raises(ParseError) as info:
        parse_feed("s", body[:body.index(b"</item>")])
    assert info.value.reason.startswith("not a feed: truncated inside its first entry")


def test_an_item_cut_off_once_is_stored_whole_on_the_next_poll(db):
    full = _long_feed(3)
    mode = {"cut": True}
    cut = full[:full.index("第2条评论".encode()) + 3]
    with LocalServer(lambda req: Response(200, cut if mode["cut"] else full, {"Content-Type": RSS_TYPE})) as server:
        pipeline = make_pipeline(db, [{"name": "feed", "type": "rss", "url": server.url}], clock=Clock(T0))
        first = pipeline.poll("feed")
        mode["cut"] = False
        second = pipeline.poll("feed")
    assert (first.error, first.stored, second.stored) == (None, 2, 1)
    assert first.skipped == ["entry 2: cut off (the document ends inside it)"]
    with db.session() as s:
        texts = dict(s.execute(select(MentionRow.external_id, MentionRow.text)).all())
    assert texts["g2"] == "星河手机第2条评论，内容完整。"


# --- absurd dates and fields ------------------------------------------------------


def test_an_item_dated_year_1_does_not_block_the_poll(db):
    items = "".join(f"<item><guid>ok{i}</guid><title>星河手机评论 {i} 号，说得很详细</title>"
                    f"<pubDate>Tue, 11 Jun 2024 10:{i:02d}:00 +0800</pubDate></item>" for i in range(10))
    absurd = ("<item><guid>y1</guid><title>公元一年</title><pubDate>Mon, 01 Jan 0001 00:00:00 +0000</pubDate></item>"
              "<item><guid>y9999</guid><title>九九九九年</title><pubDate>Fri, 31 Dec 9999 23:59:59 -0800</pubDate></item>"
              "<item><guid>y1969</guid><title>一九六九年</title><pubDate>Wed, 31 Dec 1969 23:00:00 +0000</pubDate></item>")
    body = f'<rss version="2.0"><channel><title>t</title>{items}{absurd}</channel></rss>'.encode()
    with LocalServer(lambda req: Response(200, body, {"Content-Type": RSS_TYPE})) as server:
        pipeline = make_pipeline(db, [{"name": "feed", "type": "rss", "url": server.url}], clock=Clock(T0))
        report = pipeline.poll("feed")
    assert report.error is None and report.stored == 13
    with db.session() as s:
        times = dict(s.execute(select(MentionRow.external_id, MentionRow.published_at)).all())
    assert {times[k].replace(tzinfo=timezone.utc) for k in ("y1", "y9999", "y1969")} == {T0}  # as if undated


@pytest.mark.parametrize("published", [
    datetime(1, 1, 1), datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59),
    datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))), datetime(1969, 12, 31, 23, 59, 59),
])
def test_dates_outside_1970_to_tomorrow_are_the_fetch_time(published):
    m = normalise(RawItem("x", "正文", published_at=published), source="s", tz="Asia/Shanghai", fetched_at=T0)
    assert m.published_at == T0


def test_dedup_never_raises_on_any_date():
    d = Deduper(window=timedelta(days=3))
    post = "星河手机X5发热严重，充电时背面烫得拿不住，客服电话打了三次都没人接"
    dates = [datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc),
             datetime(1, 1, 1), datetime(9999, 12, 31), T0]
    d.load([("s", f"old{i}", "h", None, t) for i, t in enumerate(dates)] + [("s", "bad", "h", None, None)])
    mentions = [normalise(RawItem(f"m{i}", post), source="s", tz="UTC", fetched_at=T0) for i in range(len(dates))]
    linked = d.link([replace(m, published_at=t) for m, t in zip(mentions, dates)])
    assert len(linked) == len(dates)
    [copy] = d.link([replace(mentions[0], external_id="copy", published_at=T0 + timedelta(hours=1))])
    assert copy.duplicate_of is not None  # sane dates still merge


def test_absurd_fields_cost_their_item_at_most():
    long_id = "x" * 600
    m = normalise(RawItem(long_id, "正文", author="某" * 1000, parent_id=long_id, likes=10**30, reposts=-3),
                  source="s", tz="UTC", fetched_at=T0)
    assert m.external_id.startswith("sha1:") and m.parent_id == m.external_id  # replies still find their parent
    assert len(m.author) == 200 and (m.likes, m.reposts) == (None, None)
    with pytest.raises(ValueError, match="unusable text: TypeError"):
        normalise(RawItem("x", 123), source="s", tz="UTC", fetched_at=T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unusable published_at"):
        normalise(RawItem("x", "正文", published_at="2024-06-11"), source="s", tz="UTC", fetched_at=T0)  # type: ignore


def test_records_that_make_mapping_raise_are_skipped_with_the_field_named(db):
    records = [{"id": "inf", "text": "点赞无穷", "likes": float("inf"), "tags": []},
               {"id": "type", "text": "类型不对", "tags": 5},
               {"id": "epoch", "text": "负的时间戳", "published_at": -1e20, "tags": []},
               {"id": "neg", "text": "1969年", "published_at": -3600, "tags": []},
               {"id": "ok", "text": "星河手机还行", "published_at": "2024-06-11T10:00:00+08:00", "tags": ["a"]}]
    body = json.dumps({"data": records}).replace("Infinity", "1e999").encode()
    with LocalServer(lambda req: Response(200, body)) as server:
        pipeline = make_pipeline(db, [{"name": "api", "type": "json_api", "url": server.url, "items": "data",
                                       "fields": {"title": "length(tags)"}}], clock=Clock(T0))
        report = pipeline.poll("api")
    assert report.error is None and report.stored == 2  # "neg" (1969: the fetch time) and "ok"
    assert len(report.skipped) == 3
    assert any("item 'inf': unreadable count in 'likes'" in r for r in report.skipped)
    assert any("field 'length(tags)': JMESPathTypeError" in r for r in report.skipped)
    assert any("item 'epoch': unreadable time" in r for r in report.skipped)


def test_one_poisonous_line_does_not_stop_a_file_source(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "第一条"}\n' + "[" * 100_000 + "\n" + '{"id": "b", "text": "第二条"}\n')
    result = JsonlFileSource(JsonlFileConfig(name="j", type="jsonl", path=str(path))).fetch(SourceState())
    assert [i.external_id for i in result.items] == ["a", "b"]
    assert result.skipped == [f"{path}:2: RecursionError: maximum recursion depth exceeded while decoding a JSON "
                              "array from a unicode string"]
    csv_path = tmp_path / "in.csv"
    csv_path.write_text('id,text\nc1,第一条\nc2,"' + "长" * 200_000 + '"\nc3,第三条\n')
    result = FileSource(FileSourceConfig(name="f", type="file", path=str(csv_path))).fetch(SourceState())
    assert [i.external_id for i in result.items] == ["c1", "c3"]
    assert len(result.skipped) == 1 and "Error: field larger than field limit" in result.skipped[0]
    with pytest.raises(ValueError, match="unreadable count in 'likes'"):
        RecordMapper(FieldMap()).to_item({"id": 1, "text": "x", "likes": "9" * 400})  # inf as a float


def test_jsonfeed_with_naive_year_1_dates_still_parses():
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": "a", "content_text": "一", "date_published": "0001-01-01T00:00:00"},
        {"id": "b", "content_text": "二", "date_published": "2024-06-11T10:00:00+08:00"}]}
    items, skipped = parse_jsonfeed("s", json.dumps(doc).encode())
    assert sorted(i.external_id for i in items) == ["a", "b"] and skipped == []


def test_json_api_cursor_survives_a_year_1_item():
    source = JsonApiSource(JsonApiConfig(name="api", type="json_api", url="http://127.0.0.1:1/x"))
    items = [RawItem("a", "一", published_at=datetime(1, 1, 1)), RawItem("b", "二", published_at=T0)]
    assert source._newest(items, None, None) == (T0, "b")
    source.close()


# --- quiet logs ------------------------------------------------------------------


def test_throttle_logs_once_then_counts_per_interval():
    t = Throttle(interval=600)
    reason = "skipped {n} items with unreadable dates"
    assert t.note("微博", reason, 0, 3, "item 'a': unreadable time") == \
        "skipped 3 items with unreadable dates (e.g. item 'a': unreadable time)"
    assert [t.note("微博", reason, s, 3) for s in range(60, 600, 60)] == [None] * 9
    assert t.note("微博", reason, 600, 3) == "skipped 30 items with unreadable dates in the last 10m " \
                                             "(e.g. item 'a': unreadable time)"
    assert t.note("微博", reason, 601, 1) is None  # a new interval
    assert t.note("知乎", reason, 601, 1) == "skipped 1 items with unreadable dates"  # per source
    assert t.note("微博", "skipped {n} items without text", 602) == "skipped 1 items without text"  # per reason


@pytest.mark.parametrize(("reason", "kind"), [
    ("page 1 item 3: item 'x': unreadable time in 'ts': 'tomorrow'", "skipped {n} items with unreadable dates"),
    ("item 2: unreadable date_published 'x'", "skipped {n} items with unreadable dates"),
    ("entry 1: has neither title nor text", "skipped {n} items without text"),
    ("item 'x': item 'x' has no text or title after cleaning", "skipped {n} items without text"),
    ("entry 4: cut off (the document ends inside it)", "skipped {n} entries cut off by a truncated document"),
    ("a.jsonl:3: invalid JSON: Expecting value at column 1", "skipped {n} unreadable records"),
    ("item 'x': unusable counts: OverflowError", "skipped {n} unusable items"),
])
def test_skip_reasons_are_counted_by_kind(reason, kind):
    assert skip_kind(reason) == kind


def test_a_feed_malformed_on_every_poll_warns_once_per_interval(caplog):
    now = [0.0]
    quiet = QuietLog(logging.getLogger("test.quiet"), interval=600, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.quiet"):
        for poll in range(60):  # one poll a minute for an hour
            now[0] = poll * 60.0
            quiet.skipped("微博", "normalise", [f"page 1 item {i}: item '{i}': unreadable time in 'ts': 'x'"
                                               for i in range(200)])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6  # not 12,000
    assert lines[0].startswith("[source=微博 stage=normalise] skipped 200 items with unreadable dates (e.g. ")
    assert lines[1].startswith("[source=微博 stage=normalise] skipped 2000 items with unreadable dates in the last 10m")


def test_rss_bozo_warning_is_quiet_after_the_first(caplog):
    body = _long_feed(3).replace(b"<title>t</title>", b"<title>t & u</title>")
    with caplog.at_level(logging.WARNING, logger="sources.rss"):
        for _ in range(5):
            assert len(parse_feed("bozo-feed", body)[0]) == 3
    assert len([r for r in caplog.records if "bozo-feed" in r.getMessage()]) == 1
