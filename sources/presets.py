"""Presets: ready-made settings for the Chinese platforms people monitor most.

A source config names a preset and its arguments instead of spelling out a URL,
an item selector and a field map::

    - name: 微博搜索·鲜丰奶茶
      type: rss
      preset: weibo_keyword          # RSSHub route /weibo/keyword/:keyword
      rsshub: https://rsshub.example.com
      args: {keyword: 鲜丰奶茶}

    - name: B站评论·新品视频
      type: json_api
      preset: bilibili_replies       # api.bilibili.com reply list, nested replies kept as a thread
      args: {oid: "1405963498"}

Settings given in the config win over the preset's. Recorded sample payloads
of each format are in ``fixtures/feeds/`` and tested in ``tests/test_source_presets.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from sources.base import RawItem

DEFAULT_RSSHUB = "https://rsshub.app"


@dataclass(frozen=True)
class RssPreset:
    route: str  # RSSHub route with {arg} placeholders
    platform: str
    description: str
    fix: Callable[[RawItem], RawItem] | None = None  # route-specific clean-up of an item


@dataclass(frozen=True)
class ApiPreset:
    url: str  # with {arg} placeholders
    platform: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)  # json_api settings (items, fields, params, pagination…)


_BILI_REPLY = re.compile(r"^(?P<author>[^:：\n]{1,40}?) : (?P<text>.*)$", re.S)
_ZHIHU_ANSWER = re.compile(r"^(?P<author>.{1,40}?)的回答(?:<br\s*/?>)+", re.S)


def _bilibili_reply(item: RawItem) -> RawItem:
    """RSSHub writes ``"<uname> : <message>"`` as title and description; split the author off."""
    from dataclasses import replace

    m = _BILI_REPLY.match(item.text or "")
    if not m:
        return item
    title = item.title.split(" : ", 1)[1] if item.title and " : " in item.title else item.title
    return replace(item, author=item.author or m.group("author").strip(), text=m.group("text"), title=title)


def _zhihu_answer(item: RawItem) -> RawItem:
    """RSSHub prefixes the answer with ``"<author>的回答<br/><br/>"``; keep the answer itself."""
    from dataclasses import replace

    m = _ZHIHU_ANSWER.match(item.text or "")
    return replace(item, text=item.text[m.end():]) if m else item


RSS_PRESETS: dict[str, RssPreset] = {
    "weibo_keyword": RssPreset("/weibo/keyword/{keyword}", "weibo", "微博关键词搜索 (RSSHub)"),
    "weibo_user": RssPreset("/weibo/user/{uid}", "weibo", "微博用户的微博 (RSSHub)"),
    "bilibili_replies": RssPreset("/bilibili/video/reply/{bvid}", "bilibili", "B站视频评论 (RSSHub)",
                                  _bilibili_reply),
    "zhihu_question": RssPreset("/zhihu/question/{question_id}", "zhihu", "知乎问题的回答 (RSSHub)", _zhihu_answer),
}

API_PRESETS: dict[str, ApiPreset] = {
    "bilibili_replies": ApiPreset(
        "https://api.bilibili.com/x/v2/reply/main", "bilibili", "B站评论区（含楼中楼，保留 parent）",
        {
            "params": {"type": "1", "oid": "{oid}", "mode": "2"},
            "items": "[data.replies[], data.replies[].replies[]][]",
            "fields": {
                "id": "rpid_str", "text": "content.message", "title": None, "author": "member.uname",
                "url": "join('', ['https://www.bilibili.com/video/av', to_string(oid), '/#reply', rpid_str])",
                "published_at": "ctime", "parent_id": "parent_str", "author_followers": None,
                "likes": "like", "reposts": None, "comments": "rcount",
            },
            "pagination": {"type": "cursor", "param": "next", "next": "data.cursor.next",
                           "stop": "data.cursor.is_end", "max_pages": 3},
        },
    ),
    "weibo_search": ApiPreset(
        "https://m.weibo.cn/api/container/getIndex", "weibo", "微博移动端搜索（container API）",
        {
            "params": {"containerid": "100103type=1&q={keyword}", "page_type": "searchall"},
            "items": "data.cards[?card_type==`9`].mblog",
            "fields": {
                "id": "mid", "text": "text", "title": None, "author": "user.screen_name",
                "url": "join('', ['https://m.weibo.cn/status/', bid])", "published_at": "created_at",
                "parent_id": "retweeted_status.mid", "author_followers": "user.followers_count",
                "likes": "attitudes_count", "reposts": "reposts_count", "comments": "comments_count",
            },
            "pagination": {"type": "page", "param": "page", "start": 1, "max_pages": 3},
        },
    ),
    "zhihu_answers": ApiPreset(
        "https://www.zhihu.com/api/v4/questions/{question_id}/answers", "zhihu", "知乎问题的回答（v4 API）",
        {
            "params": {"limit": "20", "sort_by": "created"},
            "items": "data",
            "fields": {
                "id": "id", "text": "content", "title": "question.title", "author": "author.name",
                "url": "join('', ['https://www.zhihu.com/question/', to_string(question.id), '/answer/', to_string(id)])",
                "published_at": "created_time", "parent_id": None, "author_followers": "author.follower_count",
                "likes": "voteup_count", "reposts": None, "comments": "comment_count",
            },
            "pagination": {"type": "next_url", "next": "paging.next", "stop": "paging.is_end", "max_pages": 3},
        },
    ),
}


def _fill(template: str, args: dict[str, str], *, path: bool) -> str:
    missing = sorted(set(re.findall(r"{(\w+)}", template)) - set(args))
    if missing:
        raise ValueError(f"preset needs args: {', '.join(missing)}")
    return template.format(**{k: quote(str(v), safe="") if path else str(v) for k, v in args.items()})


def _preset(data: dict, presets: dict, family: str):
    """The preset a source's config dict names (None: it names none); ValueError for an unknown one."""
    name = data.get("preset")
    if name is None:
        return None
    if name not in presets:
        raise ValueError(f"unknown {family} preset {name!r}; known: {', '.join(sorted(presets))}")
    return presets[name]


def expand_rss(data: dict) -> dict:
    """Config dict of an ``rss`` source with its ``preset`` resolved to a ``url``."""
    preset = _preset(data, RSS_PRESETS, "rss")
    if preset is None:
        return data
    base = str(data.get("rsshub") or DEFAULT_RSSHUB).rstrip("/")
    out = dict(data)
    out.setdefault("url", base + _fill(preset.route, dict(data.get("args") or {}), path=True))
    out.setdefault("platform", preset.platform)
    return out


def expand_api(data: dict) -> dict:
    """Config dict of a ``json_api`` source with its ``preset`` settings filled in (config wins)."""
    preset = _preset(data, API_PRESETS, "json_api")
    if preset is None:
        return data
    args = dict(data.get("args") or {})
    out = dict(data)
    out.setdefault("url", _fill(preset.url, args, path=True))
    out.setdefault("platform", preset.platform)
    for key, value in preset.settings.items():
        if key == "params":
            value = {k: _fill(v, args, path=False) for k, v in value.items()}
            out["params"] = {**value, **(data.get("params") or {})}
        elif key == "fields":
            out["fields"] = {**value, **(data.get("fields") or {})}
        else:
            out.setdefault(key, value)
    return out
