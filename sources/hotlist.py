"""Hot lists (热搜榜): a platform's ranked list of what is hot, fetched whole on every poll.

::

    - name: 微博热搜
      type: hotlist
      preset: weibo_hot                 # RSSHub /weibo/search/hot
      rsshub: https://rsshub.example.com
      interval: 2m

Presets (:data:`HOTLIST_PRESETS`): ``weibo_hot`` (RSSHub ``/weibo/search/hot``), ``zhihu_hot``
(``/zhihu/hot``), ``baidu_hot`` (``/baidu/top``) and ``douyin_hot`` — RSSHub has no Douyin hot-list
route, so that one reads Douyin's own web JSON (``data.word_list``). Any other list is an RSS feed
in list order (``url``), or JSON with ``format: json``, ``items``, ``fields`` and ``rank`` (JMESPath).

Every entry becomes an item with a stable id (RSSHub's guid, i.e. the entry's link; Douyin's
``sentence_id``), so it is stored once, as a mention the console shows, and its place on the
list rides along as ``extra["rank"]`` (1 = top; ``Mention.rank``, not stored: it changes every
poll). RSS gives no rank: it is the position in the feed, counted after the ``pinned`` entries
the platform puts above the ranking (微博's and 百度's first, 置顶), which stay unranked. The
published time is the fetch time — the moment the entry was seen on the list (知乎's pubDate is
the question's creation, days earlier).

A poll is a snapshot of the whole list (``snapshot = True``): what is absent from it has dropped
off. So a list that cannot be read whole — cut off mid-entry, say — fails the poll rather than
reporting a shorter list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import feedparser
from pydantic import Field, field_validator, model_validator

from monitor.core.errors import ParseError
from sources import charset, rss, safexml
from sources.base import FetchResult, RawItem, Source, SourceState
from sources.http import HttpFetcher, HttpSourceConfig
from sources.mapping import FieldMap, RecordMapper, compile_expression, load_json, problem, scalar
from sources.presets import DEFAULT_RSSHUB

JSON_ACCEPT = "application/json"


@dataclass(frozen=True)
class HotlistPreset:
    description: str
    platform: str
    route: str | None = None  # an RSSHub route (format rss), or
    url: str | None = None  # the list's own JSON endpoint (format json)
    settings: dict[str, Any] = field(default_factory=dict)  # pinned, items, fields, rank …


HOTLIST_PRESETS: dict[str, HotlistPreset] = {
    "weibo_hot": HotlistPreset("微博热搜榜 (RSSHub)", "weibo_hot", route="/weibo/search/hot", settings={"pinned": 1}),
    "zhihu_hot": HotlistPreset("知乎热榜 (RSSHub)", "zhihu_hot", route="/zhihu/hot"),
    "baidu_hot": HotlistPreset("百度热搜 (RSSHub)", "baidu_hot", route="/baidu/top", settings={"pinned": 1}),
    "douyin_hot": HotlistPreset(
        "抖音热榜 (www.douyin.com web JSON; RSSHub has no such route)", "douyin_hot",
        url="https://www.douyin.com/aweme/v1/web/hot/search/list/?device_platform=webapp&aid=6383"
            "&channel=channel_pc_web&detail_list=1",
        settings={"format": "json", "items": "data.word_list", "rank": "position",
                  "fields": {"id": "sentence_id", "text": "word", "title": "word",
                             "url": "join('', ['https://www.douyin.com/hot/', sentence_id])",
                             "author": None, "published_at": None, "parent_id": None, "author_followers": None,
                             "likes": None, "reposts": None, "comments": None}},
    ),
}


def expand_hotlist(data: dict) -> dict:
    """Config dict of a ``hotlist`` source with its ``preset`` filled in (the config wins)."""
    name = data.get("preset")
    if name is None:
        return data
    if name not in HOTLIST_PRESETS:
        raise ValueError(f"unknown hotlist preset {name!r}; known: {', '.join(sorted(HOTLIST_PRESETS))}")
    preset = HOTLIST_PRESETS[name]
    out = dict(data)
    if preset.route is not None:
        out.setdefault("url", str(data.get("rsshub") or DEFAULT_RSSHUB).rstrip("/") + preset.route)
    else:
        out.setdefault("url", preset.url)
    out.setdefault("platform", preset.platform)
    for key, value in preset.settings.items():
        out[key] = {**value, **(data.get(key) or {})} if key == "fields" else out.get(key, value)
    return out


class HotlistConfig(HttpSourceConfig):
    type: Literal["hotlist"]
    preset: str | None = None  # see HOTLIST_PRESETS
    rsshub: str | None = None  # the RSSHub instance of an RSSHub preset (default https://rsshub.app)
    format: Literal["rss", "json"] = "rss"
    pinned: int = Field(default=0, ge=0)  # leading entries above the ranking (置顶): kept, not ranked
    # format json: JMESPath to the entries, their fields, and an entry's rank (None: its position)
    items: str = "@"
    fields: FieldMap = FieldMap()
    rank: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return expand_hotlist(data) if isinstance(data, dict) else data

    @field_validator("items", "rank")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_expression(value)
        return value


class HotlistSource(Source):
    config_model = HotlistConfig
    config: HotlistConfig
    # Every poll returns the whole list: an entry missing from it has dropped off. The pipeline may
    # hand the full snapshot to the rules that watch lists (alerts/rules/hotlist.py).
    snapshot: ClassVar[bool] = True

    def __init__(self, config: HotlistConfig, *, fetcher: HttpFetcher | None = None):
        super().__init__(config)
        self._fetcher = fetcher or HttpFetcher.from_config(config)
        accept = rss.FEED_ACCEPT if config.format == "rss" else JSON_ACCEPT
        self._accept = {} if "accept" in {k.lower() for k in config.headers} else {"Accept": accept}
        if config.format == "json":
            self._items = compile_expression(config.items)
            self._rank = compile_expression(config.rank) if config.rank else None
            self._mapper = RecordMapper(config.fields, platform=config.platform)

    def fetch(self, state: SourceState) -> FetchResult:
        resp = self._fetcher.get(self.config.url, etag=state.etag, last_modified=state.last_modified,
                                 headers=self._accept)
        if resp.not_modified:
            return FetchResult(items=[], state=state, not_modified=True)
        if self.config.format == "json":
            items, skipped = self._json_entries(load_json(self.name, resp.body, resp.charset))
        else:
            items, skipped = self._rss_entries(parse_list(self.name, resp.body, resp.content_type))
        return FetchResult(items=items, state=replace(state, etag=resp.etag, last_modified=resp.last_modified),
                           skipped=skipped)

    def _rss_entries(self, entries: list[Any]) -> tuple[list[RawItem], list[str]]:
        items, skipped = [], []
        for position, entry in enumerate(entries, start=1):
            rank = position - self.config.pinned if position > self.config.pinned else None
            try:
                items.append(self._ranked(_entry_item(entry), rank))
            except ValueError as exc:
                skipped.append(f"entry {position}: {exc}")
        return items, skipped

    def _json_entries(self, doc: Any) -> tuple[list[RawItem], list[str]]:
        records = self._items.search(doc)
        if not isinstance(records, list) or not records:
            # A hot list is never empty: an empty snapshot would read as every entry dropping off.
            found = "an empty list" if isinstance(records, list) else type(records).__name__
            raise ParseError(self.name, f"接口结构可能已变化: {self.config.items} 无匹配 (got {found})")
        items, skipped = [], []
        for position, record in enumerate(records, start=1):
            try:
                item = self._mapper.to_item(record)
                rank = position - self.config.pinned if position > self.config.pinned else None
                if rank is not None and self._rank is not None:
                    given = self._rank.search(record)
                    rank = given if isinstance(given, int) and not isinstance(given, bool) and given >= 1 else rank
                items.append(self._ranked(item, rank))
            except Exception as exc:  # noqa: BLE001 - one entry, not the list
                skipped.append(f"entry {position}: {problem(exc)}")
        return items, skipped

    def _ranked(self, item: RawItem, rank: int | None) -> RawItem:
        extra = {**item.extra, "rank": rank} if rank is not None else dict(item.extra)
        return replace(item, extra=extra, published_at=None, platform=self.config.platform)

    def close(self) -> None:
        self._fetcher.close()


_XML_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])[A-Za-z0-9._:-]+(["'])""", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


def parse_list(source_name: str, body: bytes, content_type: str | None = None) -> list[Any]:
    """The feed's entries in document order (the list's order); :class:`ParseError` unless it is a
    whole feed. Same safety as :mod:`sources.rss` (declared-or-detected charset, no XML entities)."""
    if not body.strip():
        raise ParseError(source_name, "not a feed: empty body")
    declared = _CHARSET.search(content_type or "")
    text, _ = charset.decode(body, declared.group(1) if declared else None)
    vetted = safexml.vet(source_name, _XML_ENCODING.sub(r"\1utf-8\2", text, count=1).encode("utf-8"))
    if vetted.complete_entries is not None:
        raise ParseError(source_name, f"hot list cut off after {vetted.complete_entries} entries: "
                                      "a partial list would read as entries dropping off")
    try:
        parsed = feedparser.parse(vetted.data, response_headers={"content-type": "application/xml; charset=utf-8"})
    except Exception as exc:  # feedparser is lenient; anything escaping is a bad payload
        raise ParseError(source_name, f"not a feed: {type(exc).__name__}: {exc}") from exc
    entries = list(parsed.get("entries") or [])
    if not entries:
        if parsed.get("bozo") or not parsed.get("version"):
            raise ParseError(source_name, "not a feed: no RSS or Atom entries")
        raise ParseError(source_name, "hot list is empty: an empty snapshot would read as every entry dropping off")
    return entries


def _entry_item(entry: Any) -> RawItem:
    title = scalar(entry.get("title"))
    link = scalar(entry.get("link"))
    text = (entry.get("summary") or entry.get("description") or "").strip()
    if not title and not text:
        raise ValueError("has neither title nor text")
    external_id = scalar(entry.get("id")) or link or title  # RSSHub: guid || link || title
    return RawItem(external_id=external_id, text=text or title or "", title=title, url=link)
