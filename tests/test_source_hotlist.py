"""hotlist source against recorded RSSHub / Douyin payloads served by real HTTP servers on 127.0.0.1:
list order is the rank, pinned entries stay unranked, stable ids, a list read whole or not at all."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from monitor.core.errors import ParseError
from sources.base import SourceState
from sources.hotlist import HotlistConfig, HotlistSource
from sources.normalise import normalise
from sources.registry import SOURCES
from tests.servers import LocalServer, Request, Response
from tests.source_helpers import JSON_TYPE, RSS_TYPE

HOTLIST = Path(__file__).resolve().parent.parent / "fixtures" / "hotlist"
NOW = datetime(2024, 5, 6, 6, 10, 30, tzinfo=timezone.utc)


def serve(name: str, content_type: str = RSS_TYPE, **headers: str) -> LocalServer:
    body = (HOTLIST / name).read_bytes()
    return LocalServer(lambda req: Response(200, body, {"Content-Type": content_type, **headers}))


def fetch(server: LocalServer, preset: str, **settings):
    where = {"url": server.url + "/hot"} if preset == "douyin_hot" else {"rsshub": server.url}
    source = HotlistSource(HotlistConfig(name=preset, type="hotlist", preset=preset, retries=0, **where, **settings))
    try:
        return source.fetch(SourceState())
    finally:
        source.close()


def ranks(result) -> dict[str, int | None]:
    return {item.title: item.extra.get("rank") for item in result.items}


def test_weibo_hot_list_order_is_the_rank_after_the_pinned_entry():
    with serve("weibo_hot_rsshub.xml") as server:
        result = fetch(server, "weibo_hot")
    assert server.requests[0].path == "/weibo/search/hot"
    assert "application/rss+xml" in server.requests[0].headers["accept"]
    assert len(result.items) == 51 and result.skipped == []
    pinned, first = result.items[:2]
    assert pinned.title == "坚持以高质量发展为主线" and "rank" not in pinned.extra  # 置顶: above the ranking
    assert (first.title, first.extra["rank"]) == ("五一假期全国出游人次创新高", 1)
    assert [i.extra["rank"] for i in result.items[1:]] == list(range(1, 51))
    hit = next(i for i in result.items if i.title == "鲜丰奶茶多名顾客喝后腹泻")
    assert hit.extra["rank"] == 8 and hit.platform == "weibo_hot" and hit.published_at is None
    assert hit.external_id == hit.url  # RSSHub's guid is the entry's search link: the same on every poll
    assert unquote(hit.url).endswith("q=鲜丰奶茶多名顾客喝后腹泻")
    assert result.state.etag is None


def test_zhihu_hot_keeps_list_order_though_entries_carry_their_questions_dates():
    with serve("zhihu_hot_rsshub.xml") as server:
        result = fetch(server, "zhihu_hot")
    assert server.requests[0].path == "/zhihu/hot"
    assert list(ranks(result).values()) == list(range(1, 11))  # no pinned entry on 知乎
    hit = result.items[3]
    assert hit.title == "如何看待鲜丰奶茶多家门店被曝顾客喝后腹泻？" and hit.extra["rank"] == 4
    assert hit.external_id == "https://www.zhihu.com/question/639112233"
    assert hit.published_at is None  # the pubDate is the question's creation, not when it was on the list
    assert "多名网友反映" in hit.text
    assert result.items[1].text == result.items[1].title  # an entry without an excerpt is its title


def test_baidu_hot_pinned_entry_and_the_mention_that_results():
    with serve("baidu_top_rsshub.xml") as server:
        result = fetch(server, "baidu_hot")
    assert server.requests[0].path == "/baidu/top"
    assert ranks(result)["鲜丰奶茶回应顾客腹泻"] == 23 and "rank" not in result.items[0].extra
    hit = next(i for i in result.items if i.extra.get("rank") == 23)
    mention = normalise(hit, source="百度热搜", tz="Asia/Shanghai", fetched_at=NOW)
    assert (mention.rank, mention.platform, mention.published_at) == (23, "baidu_hot", NOW)
    assert mention.title == "鲜丰奶茶回应顾客腹泻" and mention.text.startswith("5月6日，鲜丰奶茶官方微博发布声明")
    assert mention.url.startswith("https://www.baidu.com/s?wd=%E9%B2%9C")


def test_douyin_hot_reads_douyins_own_json_with_its_positions():
    with serve("douyin_hot.json", JSON_TYPE) as server:
        result = fetch(server, "douyin_hot")
    assert server.requests[0].path == "/hot"
    assert server.requests[0].headers["accept"] == "application/json"
    assert len(result.items) == 50 and result.skipped == []
    hit = next(i for i in result.items if i.title == "鲜丰奶茶门店被查")
    assert (hit.extra["rank"], hit.external_id, hit.text) == (17, "1500592", "鲜丰奶茶门店被查")
    assert hit.url == "https://www.douyin.com/hot/1500592" and hit.platform == "douyin_hot"
    assert hit.author is None and hit.likes is None and hit.published_at is None


def test_generic_json_list_with_pinned_entries_and_a_rank_field():
    doc = b'{"list": [{"k": "a", "t": "\xe7\xbd\xae\xe9\xa1\xb6"}, {"k": "b", "t": "B", "r": 1}, {"k": "c", "t": "C"}]}'
    with LocalServer(lambda req: Response(200, doc, {"Content-Type": JSON_TYPE})) as server:
        source = HotlistSource(HotlistConfig(name="x", type="hotlist", format="json", url=server.url, items="list",
                                             rank="r", pinned=1, fields={"id": "k", "text": "t"}))
        result = source.fetch(SourceState())
    assert [(i.external_id, i.extra.get("rank")) for i in result.items] == [("a", None), ("b", 1), ("c", 2)]


def test_unchanged_list_is_not_modified():
    body = (HOTLIST / "weibo_hot_rsshub.xml").read_bytes()

    def handler(req: Request) -> Response:
        if req.headers.get("if-none-match") == '"w1"':
            return Response(304)
        return Response(200, body, {"Content-Type": RSS_TYPE, "ETag": '"w1"'})

    with LocalServer(handler) as server:
        source = HotlistSource(HotlistConfig(name="w", type="hotlist", preset="weibo_hot", rsshub=server.url))
        first = source.fetch(SourceState())
        again = source.fetch(first.state)
    assert first.state.etag == '"w1"' and again.not_modified and again.items == []


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    ((HOTLIST / "weibo_hot_rsshub.xml").read_bytes()[:9000], RSS_TYPE, "hot list cut off after"),
    (b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', RSS_TYPE,
     "hot list is empty"),
    ("<html><body>请登录</body></html>".encode(), "text/html", "not a feed"),
])
def test_a_list_that_cannot_be_read_whole_fails_the_poll(body, content_type, reason):
    with LocalServer(lambda req: Response(200, body, {"Content-Type": content_type})) as server:
        with pytest.raises(ParseError) as info:
            fetch(server, "weibo_hot")
    assert reason in info.value.reason


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"data": {"words": []}, "status_code": 0}', "接口结构可能已变化: data.word_list 无匹配 (got NoneType)"),
    (b'{"data": {"word_list": []}, "status_code": 0}', "接口结构可能已变化: data.word_list 无匹配 (got an empty list)"),
])
def test_douyin_list_gone_from_its_place_fails_the_poll(body, reason):
    with LocalServer(lambda req: Response(200, body, {"Content-Type": JSON_TYPE})) as server:
        with pytest.raises(ParseError) as info:
            fetch(server, "douyin_hot")
    assert info.value.reason == reason


def test_config():
    with pytest.raises(ValidationError, match="unknown hotlist preset 'kuaishou_hot'"):
        HotlistConfig(name="a", type="hotlist", preset="kuaishou_hot")
    with pytest.raises(ValidationError, match="invalid JMESPath expression"):
        HotlistConfig(name="a", type="hotlist", url="https://x.cn", format="json", rank="a..b")
    cfg = HotlistConfig(name="a", type="hotlist", preset="weibo_hot", pinned=0, platform="weibo")
    assert (cfg.url, cfg.pinned, cfg.platform) == ("https://rsshub.app/weibo/search/hot", 0, "weibo")  # config wins
    assert SOURCES.get("hotlist") is HotlistSource and HotlistSource.snapshot


def test_entries_are_stored_once_as_mentions_and_page_through_the_pipeline(db):
    from sqlalchemy import select

    from monitor.storage.models import IncidentRow, MentionRow
    from tests.source_helpers import make_pipeline

    with serve("weibo_hot_rsshub.xml") as server:
        pipeline = make_pipeline(db, [{"name": "微博热搜", "type": "hotlist", "preset": "weibo_hot",
                                       "rsshub": server.url, "retries": 0}],
                                 topics=[{"name": "鲜丰奶茶", "keywords": ["鲜丰奶茶", "鲜丰"]}],
                                 rules=[{"name": "上热搜", "type": "hotlist"}])
        try:
            first, second = pipeline.poll("微博热搜"), pipeline.poll("微博热搜")
        finally:
            pipeline.close()
    assert (first.stored, first.alerts, second.stored) == (51, 1, 0)
    with db.session() as s:
        hit = s.scalars(select(MentionRow).where(MentionRow.title == "鲜丰奶茶多名顾客喝后腹泻")).one()
        [incident] = s.scalars(select(IncidentRow))
    assert hit.topics == ["鲜丰奶茶"] and hit.platform == "weibo_hot"
    assert (incident.rule_type, incident.severity) == ("hotlist", "II")
    assert incident.reason == "「鲜丰奶茶」登上微博热搜第8名：鲜丰奶茶多名顾客喝后腹泻"
