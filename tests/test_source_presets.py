"""RSSHub presets: the URL each builds, and the recorded sample of each route parsed through it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from monitor.app.config import parse_config
from sources.base import SourceState
from sources.normalise import normalise
from sources.presets import API_PRESETS, RSS_PRESETS
from sources.rss import RssSource, RssSourceConfig
from tests.servers import LocalServer, Request, Response
from tests.source_helpers import RSS_TYPE, feed_bytes

ROUTES = {
    "/weibo/keyword/%E6%98%9F%E6%B2%B3%E6%89%8B%E6%9C%BA": "weibo_keyword_rsshub.xml",
    "/weibo/user/1234567890": "weibo_user_rsshub.xml",
    "/bilibili/video/reply/BV1Gx4y1E7aB": "bilibili_reply_rsshub.xml",
    "/zhihu/question/601234567": "zhihu_question_rsshub.xml",
}


def rsshub(req: Request) -> Response:
    name = ROUTES.get(req.path)
    return Response(200, feed_bytes(name), {"Content-Type": RSS_TYPE}) if name else Response(404, b"no route")


def fetch(server, preset: str, **args):
    cfg = RssSourceConfig(name=preset, type="rss", preset=preset, rsshub=server.url + "/", args=args)
    return cfg, RssSource(cfg).fetch(SourceState())


def test_weibo_keyword_preset_builds_the_route_and_sets_the_platform():
    with LocalServer(rsshub) as server:
        cfg, result = fetch(server, "weibo_keyword", keyword="星河手机")
    assert cfg.url == server.url + "/weibo/keyword/%E6%98%9F%E6%B2%B3%E6%89%8B%E6%9C%BA"
    assert cfg.platform == "weibo" and len(result.items) == 3
    assert {i.platform for i in result.items} == {"weibo"}


def test_weibo_user_preset_keeps_the_repost_chain_text():
    with LocalServer(rsshub) as server:
        _, result = fetch(server, "weibo_user", uid="1234567890")
    statement, reply = result.items
    assert statement.author == "星河手机" and statement.external_id == "https://weibo.com/1234567890/OcBaAbCd1"
    m = normalise(reply, source="w", tz="Asia/Shanghai", fetched_at=datetime(2024, 5, 7, tzinfo=timezone.utc))
    assert m.text.startswith("感谢反馈，已安排专人跟进 //@数码小白兔:星河手机X5充电半小时就烫手") and "[怒]" in m.text


def test_bilibili_replies_preset_splits_the_author_off_the_text():
    with LocalServer(rsshub) as server:
        _, result = fetch(server, "bilibili_replies", bvid="BV1Gx4y1E7aB")
    first, second = result.items
    assert first.author == "电子产品测评君" and first.text == "实测充电40分钟背部46度，确实偏高[思考]"
    assert first.title == "实测充电40分钟背部46度，确实偏高[思考]"
    assert first.external_id == "https://www.bilibili.com/video/BV1Gx4y1E7aB/#reply212345678901"  # no guid: link
    assert second.author == "小明不吃香菜" and first.platform == "bilibili"


def test_zhihu_question_preset_drops_the_answer_prefix():
    with LocalServer(rsshub) as server:
        _, result = fetch(server, "zhihu_question", question_id="601234567")
    answer = next(i for i in result.items if i.external_id == "3456789012")
    assert answer.author == "老张" and answer.text.startswith("<p>用了三周")
    assert answer.title.startswith("老张的回答：")


def test_preset_errors_and_config_file_form():
    with pytest.raises(ValidationError, match="unknown rss preset 'douyin'; known: bilibili_replies"):
        RssSourceConfig(name="a", type="rss", preset="douyin")
    with pytest.raises(ValidationError, match="preset needs args: keyword"):
        RssSourceConfig(name="a", type="rss", preset="weibo_keyword")
    config = parse_config("sources:\n  - {name: 微博, type: rss, preset: weibo_keyword, args: {keyword: 鲜丰奶茶}}\n")
    assert config.sources[0].url == "https://rsshub.app/weibo/keyword/%E9%B2%9C%E4%B8%B0%E5%A5%B6%E8%8C%B6"
    explicit = RssSourceConfig(name="a", type="rss", preset="weibo_user", args={"uid": "1"}, url="https://r.cn/x")
    assert explicit.url == "https://r.cn/x"  # the config wins over the preset
    assert set(RSS_PRESETS) == {"weibo_keyword", "weibo_user", "bilibili_replies", "zhihu_question"}
    assert set(API_PRESETS) == {"bilibili_replies", "weibo_search", "zhihu_answers"}
