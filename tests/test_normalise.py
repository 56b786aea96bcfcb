"""normalise(): pure cleaning, time handling and hashing."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sources.base import RawItem
from sources.normalise import clean_text, content_hash, normalise
from sources.rss import parse_feed

FEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
FETCHED = datetime(2024, 5, 6, 4, 30, tzinfo=timezone.utc)


def norm(text: str = "正文", *, tz: str = "Asia/Shanghai", fetched_at: datetime = FETCHED, **fields):
    item = RawItem(external_id=fields.pop("external_id", "id-1"), text=text, **fields)
    return normalise(item, source="src", tz=tz, fetched_at=fetched_at)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("你好<br>世界", "你好\n世界"),
        ("第一行<br/><br />第二行", "第一行\n第二行"),
        ("<p>段落一</p><p>段落<b>二</b></p>", "段落一\n段落二"),
        ("&lt;b&gt; &amp; &#20320;&#x597D; &quot;x&quot;", '<b> & 你好 "x"'),
        ("前面{%sina_emotion id=3%}后面", "前面后面"),
        ("{% a %}中{% b %}间{%未闭合", "中间{%未闭合"),
        ("气死了[怒][怒]", "气死了[怒][怒]"),
        ('太差<img alt="[怒]" src="https://face.t.sinajs.cn/x.png">了<img src="p.jpg" alt="图片">', "太差[怒]了"),
        ("  多个   空格\t和\u3000全角空格\n\n\n换行 ", "多个 空格 和 全角空格\n换行"),
        ("<script>alert(1)</script><style>p{}</style>正常", "正常"),
        ("零\u200b宽", "零宽"),
        ("比较 1<2 和 3>2", "比较 1<2 和 3>2"),
        ('转发 //<a href="https://weibo.com/n/某用户">@某用户</a>:原文', "转发 //@某用户:原文"),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_mention_fields_and_raw_text_kept():
    raw = "<p>售后&amp;客服 都不理人[怒]</p>"
    published = datetime(2024, 5, 6, 3, 0, tzinfo=timezone.utc)
    m = norm(raw, title=" 标题 ", url="https://weibo.com/1/2", author="某用户",
             parent_id="p-9", published_at=published, external_id=" w-1 ")
    assert m.text == "售后&客服 都不理人[怒]"
    assert m.raw_text == raw
    assert m.source == "src" and m.external_id == "w-1"
    assert (m.title, m.url, m.author, m.parent_id) == ("标题", "https://weibo.com/1/2", "某用户", "p-9")
    assert m.published_at == published and m.fetched_at == FETCHED
    assert m.content_hash == hashlib.sha1("售后&客服都不理人[怒]".encode()).hexdigest()
    assert m.score is None and m.label is None and m.id is None


def test_naive_time_is_local_to_source_timezone():
    m = norm(published_at=datetime(2024, 5, 6, 9, 12))
    assert m.published_at == datetime(2024, 5, 6, 1, 12, tzinfo=timezone.utc)
    assert m.published_at.tzinfo == timezone.utc
    other = norm(published_at=datetime(2024, 5, 6, 9, 12), tz="Europe/Berlin")
    assert other.published_at == datetime(2024, 5, 6, 7, 12, tzinfo=timezone.utc)


def test_aware_time_converted_to_utc():
    local = datetime(2024, 5, 6, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    m = norm(published_at=local)
    assert m.published_at == datetime(2024, 5, 6, 4, 0, tzinfo=timezone.utc)
    assert m.published_at.utcoffset() == timedelta(0)


def test_missing_time_is_fetch_time():
    fetched = datetime(2024, 5, 6, 12, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    m = norm(published_at=None, fetched_at=fetched)
    assert m.published_at == m.fetched_at == datetime(2024, 5, 6, 4, 30, tzinfo=timezone.utc)
    assert m.fetched_at.tzinfo == timezone.utc


def test_far_future_time_is_clamped_near_future_kept():
    far = FETCHED + timedelta(days=1, minutes=1)
    near = FETCHED + timedelta(hours=3)
    assert norm(published_at=far).published_at == FETCHED
    assert norm(published_at=near).published_at == near
    # a naive local time one week ahead is clamped too
    assert norm(published_at=datetime(2024, 5, 13, 9, 0)).published_at == FETCHED


@pytest.mark.parametrize("text", ["", "   ", "<img src='a.jpg'><br>", "{%emotion%}", "<p>\u3000</p>"])
def test_no_text_and_no_title_is_value_error(text):
    with pytest.raises(ValueError, match="no text or title"):
        norm(text)


def test_title_only_item_uses_title_as_text():
    m = norm("<img src='a.jpg'>", title="星河手机  发布会")
    assert m.text == m.title == "星河手机 发布会"
    assert m.content_hash == content_hash("星河手机 发布会")


def test_empty_id_is_value_error():
    with pytest.raises(ValueError, match="external_id"):
        norm("x", external_id="  ")


def test_naive_fetched_at_is_a_caller_error():
    with pytest.raises(TypeError):
        norm("x", fetched_at=datetime(2024, 5, 6, 4, 30))


def test_unknown_timezone_is_value_error():
    with pytest.raises(ValueError, match="unknown timezone"):
        norm("x", tz="Mars/Olympus", published_at=datetime(2024, 5, 6))


def test_content_hash_ignores_case_and_whitespace():
    assert content_hash("Hello  World\n星河") == content_hash("hello world 星河")
    assert content_hash("hello world") != content_hash("hello world!")
    assert norm("<b>X5</b>  发热").content_hash == norm("x5发热").content_hash


def test_weibo_feed_end_to_end():
    items, _ = parse_feed("weibo", (FEEDS / "weibo_keyword_rsshub.xml").read_bytes())
    mentions = {i.external_id.rsplit("/", 1)[1]: normalise(i, source="weibo", tz="Asia/Shanghai",
                                                           fetched_at=FETCHED) for i in items}
    assert mentions["OcAbCdEf1"].text == (
        "星河手机X5充电半小时就烫手，售后还说正常？[怒][怒]\n客服电话打了三次都没人接 #星河手机发热#"
    )
    assert mentions["OcAbGhIj2"].text == "同感！我的也是 //@数码小白兔:星河手机X5充电半小时就烫手，售后还说正常？[怒]"
    assert mentions["OcAaKlMn3"].text == "星河手机新品发布会定档5月20日，期待！[哈哈] <3"
    assert mentions["OcAaKlMn3"].published_at == datetime(2024, 5, 6, 1, 5, 44, tzinfo=timezone.utc)
    assert "<img" in mentions["OcAbCdEf1"].raw_text
