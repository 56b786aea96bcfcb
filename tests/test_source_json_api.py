"""json_api and jsonfeed sources against real HTTP servers on 127.0.0.1: JMESPath mapping,
pagination by page / cursor / next URL, incremental cursor, comment threads, counts."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from monitor.core.errors import ParseError
from sources.base import SourceState
from sources.json_api import JsonApiConfig, JsonApiSource
from sources.jsonfeed import JsonFeedConfig, JsonFeedSource
from sources.registry import SOURCES
from tests.servers import LocalServer, Request, Response
from tests.source_helpers import JSON_TYPE, feed_bytes


def api(url: str, **settings) -> JsonApiSource:
    return JsonApiSource(JsonApiConfig(name="api", type="json_api", url=url, retries=0, **settings))


def query(req: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(req.path).query).items()}


def test_bilibili_replies_preset_pages_by_cursor_and_keeps_the_thread():
    pages = {None: feed_bytes("bilibili_replies_api_page1.json"), "2": feed_bytes("bilibili_replies_api_page2.json")}

    def handler(req: Request) -> Response:
        return Response(200, pages[query(req).get("next")], {"Content-Type": JSON_TYPE})

    with LocalServer(handler) as server:
        cfg = JsonApiConfig(name="b站", type="json_api", preset="bilibili_replies", args={"oid": "1405963498"},
                            url=server.url + "/x/v2/reply/main", retries=0)
        result = JsonApiSource(cfg).fetch(SourceState())

    assert [query(r) for r in server.requests] == [
        {"type": "1", "oid": "1405963498", "mode": "2"},
        {"type": "1", "oid": "1405963498", "mode": "2", "next": "2"},
    ]
    by_id = {i.external_id: i for i in result.items}
    assert set(by_id) == {"212345678955", "212345678901", "212345679001", "212345670000"}
    reply = by_id["212345679001"]  # a reply inside a reply: the thread keeps its parent
    assert reply.parent_id == "212345678955" and reply.author == "星河手机官方"
    assert by_id["212345678955"].parent_id is None  # "0" means top level
    top = by_id["212345678901"]
    assert top.text == "实测充电40分钟背部46度，确实偏高[思考]" and top.likes == 12034
    assert top.published_at == datetime.fromtimestamp(1714978683, tz=timezone.utc)
    assert top.url == "https://www.bilibili.com/video/av1405963498/#reply212345678901"
    assert top.platform == "bilibili" and by_id["212345678955"].comments == 1
    assert json.loads(result.state.cursor)["newest_id"] == "212345679001"


def test_weibo_search_preset_selects_only_posts_and_reads_chinese_counts():
    body = feed_bytes("weibo_search_api.json")
    with LocalServer(lambda req: Response(200, body, {"Content-Type": JSON_TYPE})) as server:
        cfg = JsonApiConfig(name="微博", type="json_api", preset="weibo_search", args={"keyword": "星河手机"},
                            url=server.url + "/api/container/getIndex", pagination={"type": "none"}, retries=0)
        result = JsonApiSource(cfg).fetch(SourceState())

    assert query(server.requests[0]) == {"containerid": "100103type=1&q=星河手机", "page_type": "searchall"}
    first, repost = result.items
    assert first.external_id == "5031234567890123" and first.author == "数码小白兔"
    assert (first.author_followers, first.comments, first.reposts, first.likes) == (12000, 10000, 120, 356)
    assert first.published_at == datetime(2024, 5, 6, 4, 20, 31, tzinfo=timezone.utc)
    assert first.url == "https://m.weibo.cn/status/OcAbCdEf1"
    assert repost.parent_id == "5031234567890123"  # the reposted post
    assert result.skipped == []


def test_zhihu_answers_preset_follows_next_url_until_is_end():
    page1 = json.loads(feed_bytes("zhihu_answers_api.json"))
    page1["paging"]["is_end"] = False
    page2 = {"data": [], "paging": {"is_end": True, "next": None}}

    def handler(req: Request) -> Response:
        if "offset=20" in req.path:
            return Response(200, json.dumps(page2).encode(), {"Content-Type": JSON_TYPE})
        return Response(200, json.dumps(page1, ensure_ascii=False).encode(), {"Content-Type": JSON_TYPE})

    with LocalServer(handler) as server:
        page1["paging"]["next"] = page1["paging"]["next"].replace("https://www.zhihu.com", server.url)
        cfg = JsonApiConfig(name="知乎", type="json_api", preset="zhihu_answers", args={"question_id": "601234567"},
                            url=server.url + "/api/v4/questions/601234567/answers", retries=0)
        result = JsonApiSource(cfg).fetch(SourceState())

    assert len(server.requests) == 2 and "offset=20" in server.requests[1].path
    answer = next(i for i in result.items if i.external_id == "3456789012")
    assert answer.author == "老张" and answer.author_followers == 1523 and answer.likes == 87
    assert answer.title == "星河手机X5发热严重是普遍问题吗？" and "<p>用了三周" in answer.text
    assert answer.url == "https://www.zhihu.com/question/601234567/answer/3456789012"


def test_page_pagination_stops_at_items_seen_last_time():
    def page(n: int) -> list[dict]:  # 3 items per page, newest first, one hour apart
        return [{"id": f"p{n}-{k}", "text": f"第{n}页第{k}条", "published_at": 1714960000 - 3600 * (3 * n + k)}
                for k in range(3)]

    with LocalServer(lambda req: Response(200, json.dumps({"list": page(int(query(req)["p"]))}).encode())) as server:
        source = api(server.url + "/search", items="list", pagination={"type": "page", "param": "p", "start": 0,
                                                                       "max_pages": 4})
        first = source.fetch(SourceState())
        assert [query(r)["p"] for r in server.requests] == ["0", "1", "2", "3"]
        server.requests.clear()
        second = source.fetch(first.state)
    assert json.loads(first.state.cursor)["newest_id"] == "p0-0"
    # the first page is all at or before the newest item seen: no need to page further
    assert [query(r)["p"] for r in server.requests] == ["0"]
    assert len(second.items) == 3


def test_since_param_sends_the_newest_id_and_items_without_id_or_text_are_skipped():
    rows = [{"mid": "9", "content": "有内容", "t": "2024-05-06 12:00:00"}, {"content": "没有 id"},
            {"mid": "8"}, {"mid": "7", "content": "时间坏了", "t": "昨天下午"}]
    with LocalServer(lambda req: Response(200, json.dumps({"data": rows}, ensure_ascii=False).encode())) as server:
        source = api(server.url + "/feed", items="data", since_param="since_id",
                     fields={"id": "mid", "text": "content", "published_at": "t"})
        first = source.fetch(SourceState())
        source.fetch(first.state)
    assert [i.external_id for i in first.items] == ["9"]
    assert first.items[0].published_at == datetime(2024, 5, 6, 12, 0)  # naive: the source's timezone applies
    assert first.skipped == ["page 1 item 1: missing id ('mid')", "page 1 item 2: item '8': missing text ('content')",
                             "page 1 item 3: item '7': unreadable time in 't': '昨天下午'"]
    assert "since_id" not in query(server.requests[0]) and query(server.requests[1])["since_id"] == "9"


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"data": [{"id": 1, "text": "a"}', "not JSON: truncated after"),
    ("<html><body>请登录</body></html>".encode(), "not JSON: got an HTML page"),
    (b"", "not JSON: empty body"),
    (b'{"data": {"id": 1}}', "items expression 'data' selected dict, expected a list"),
])
def test_bad_payloads_are_parse_errors(body, reason):
    with LocalServer(lambda req: Response(200, body, {"Content-Type": JSON_TYPE})) as server:
        with pytest.raises(ParseError) as info:
            api(server.url, items="data").fetch(SourceState())
    assert reason in info.value.reason and info.value.source == "api"


def test_config_errors_are_precise():
    with pytest.raises(ValidationError, match="invalid JMESPath expression 'data..x'"):
        JsonApiConfig(name="a", type="json_api", url="https://x.cn", items="data..x")
    with pytest.raises(ValidationError, match="pagination type 'cursor' needs 'param'"):
        JsonApiConfig(name="a", type="json_api", url="https://x.cn", pagination={"type": "cursor", "next": "n"})
    with pytest.raises(ValidationError, match="unknown json_api preset 'douyin'"):
        JsonApiConfig(name="a", type="json_api", preset="douyin")
    with pytest.raises(ValidationError, match="preset needs args: oid"):
        JsonApiConfig(name="a", type="json_api", preset="bilibili_replies")
    assert SOURCES.get("json_api") is JsonApiSource and SOURCES.get("jsonfeed") is JsonFeedSource


# --- JSON Feed --------------------------------------------------------------------------


def test_jsonfeed_items_authors_and_skips():
    body = feed_bytes("jsonfeed_sample.json")
    with LocalServer(lambda req: Response(200, body, {"Content-Type": "application/feed+json", "ETag": '"j1"'})) as server:
        source = JsonFeedSource(JsonFeedConfig(name="bbs", type="jsonfeed", url=server.url + "/feed.json",
                                               platform="bbs"))
        result = source.fetch(SourceState())
    assert [i.external_id for i in result.items] == ["88001", "https://bbs.example.cn/t/88002"]
    older, newer = result.items
    assert older.author == "小王" and older.text == "预算两千，主要拍照和续航。"  # JSON Feed 1.0 author
    assert newer.author == "老张" and "<p>买了不到一个月" in newer.text and newer.platform == "bbs"
    assert newer.published_at == datetime(2024, 5, 6, 6, 2, tzinfo=timezone.utc)
    assert result.skipped == ["item 2: has neither title nor text"]
    assert result.state.etag == '"j1"'
    assert "application/feed+json" in server.requests[0].headers["accept"]


def test_jsonfeed_that_is_not_one():
    with LocalServer(lambda req: Response(200, b'{"items": []}')) as server:
        with pytest.raises(ParseError, match="not a JSON Feed"):
            JsonFeedSource(JsonFeedConfig(name="x", type="jsonfeed", url=server.url)).fetch(SourceState())


# --- schema change: the items path stops matching ----------------------------------------


class Answers:
    """A server whose JSON answer the test changes between polls."""

    def __init__(self, doc: dict):
        self.doc = doc

    def __call__(self, req: Request) -> Response:
        return Response(200, json.dumps(self.doc, ensure_ascii=False).encode(), {"Content-Type": JSON_TYPE})


def rows(*ids: str) -> list[dict]:
    return [{"id": i, "text": f"评论{i}", "published_at": 1714960000 + n} for n, i in enumerate(ids)]


def test_items_path_that_stops_matching_fails_the_source_on_the_third_poll_and_recovers_with_the_schema():
    answers = Answers({"data": {"list": rows("1", "2")}})
    with LocalServer(answers) as server:
        source = api(server.url + "/comments", items="data.list")
        state = source.fetch(SourceState()).state
        answers.doc = {"data": {"comment_list": rows("3")}}  # the platform renamed the list
        for _ in range(2):  # polls 1 and 2 without the path: healthy, nothing new
            result = source.fetch(state)
            assert result.items == [] and result.skipped == []
            state = result.state
        for _ in range(2):  # the third fails, and so does every later one while the path is missing
            with pytest.raises(ParseError) as info:
                source.fetch(state)
            assert info.value.reason == "接口结构可能已变化: data.list 无匹配"
        answers.doc = {"data": {"list": rows("1", "2", "4")}}  # schema restored (or the config fixed)
        back = source.fetch(state)
    assert [i.external_id for i in back.items] == ["1", "2", "4"]
    assert json.loads(back.state.cursor)["matched"] is True and "misses" not in json.loads(back.state.cursor)


@pytest.mark.parametrize("doc", [{"data": {"list": []}}, {"data": {"list": None}}],
                         ids=["empty list", "null"])
def test_a_legitimately_empty_list_is_never_a_failure(doc):
    answers = Answers({"data": {"list": rows("1")}})
    with LocalServer(answers) as server:
        source = api(server.url, items="data.list")
        state = source.fetch(SourceState()).state
        answers.doc = doc
        for _ in range(6):
            result = source.fetch(state)
            assert result.items == []
            state = result.state
    assert "misses" not in json.loads(state.cursor)


def test_missing_path_counts_only_after_it_has_matched_and_the_count_is_configurable():
    answers = Answers({"result": []})
    with LocalServer(answers) as server:
        never = api(server.url, items="data.list")  # a path that never matched: a config matter, not a change
        state = SourceState()
        for _ in range(5):
            state = never.fetch(state).state
        assert state.cursor is None
        answers.doc = {"data": {"list": rows("1")}}
        once = api(server.url, items="data.list", missing_items_after=1)
        state = once.fetch(SourceState()).state
        answers.doc = {"data": {}}
        with pytest.raises(ParseError, match="接口结构可能已变化: data.list 无匹配"):
            once.fetch(state)
        off = api(server.url, items="data.list", missing_items_after=0)
        for _ in range(4):
            state = off.fetch(state).state
    assert json.loads(state.cursor)["misses"] == 4


def test_every_branch_of_a_flattened_items_expression_must_be_missing():
    expr = "[data.replies[], data.replies[].replies[]][]"  # the bilibili_replies shape
    answers = Answers({"data": {"replies": [{"id": "1", "text": "好", "replies": [{"id": "2", "text": "同意"}]}]}})
    with LocalServer(answers) as server:
        source = api(server.url, items=expr, missing_items_after=2)
        state = source.fetch(SourceState()).state
        answers.doc = {"data": {"replies": None}}  # a video whose comments are gone: present, empty
        for _ in range(3):
            state = source.fetch(state).state
        answers.doc = {"data": {"reply_list": []}}  # renamed: a flattened expression would give [] as well
        state = source.fetch(state).state
        with pytest.raises(ParseError, match=r"接口结构可能已变化: \[data\.replies\[\], .* 无匹配"):
            source.fetch(state)


def test_schema_change_shows_as_failing_source_through_the_pipeline(db):
    from monitor.storage import repo
    from tests.source_helpers import make_pipeline

    answers = Answers({"data": {"list": rows("1")}})
    with LocalServer(answers) as server:
        pipeline = make_pipeline(db, [{"name": "接口", "type": "json_api", "url": server.url, "items": "data.list",
                                       "retries": 0, "fields": {"id": "id", "text": "text"}}])
        try:
            reports = [pipeline.poll("接口")]
            answers.doc = {"data": {"records": rows("2")}}
            reports += [pipeline.poll("接口") for _ in range(4)]
        finally:
            pipeline.close()
    assert [r.stored for r in reports] == [1, 0, 0, 0, 0]
    assert [r.error for r in reports] == [None, None, None] + ["接口结构可能已变化: data.list 无匹配"] * 2
    with db.session() as s:
        [status] = repo.source_states(s)
    assert status.consecutive_failures == 2 and status.last_error == "接口结构可能已变化: data.list 无匹配"
