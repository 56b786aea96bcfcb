"""Any JSON HTTP API: items selected and fields mapped with JMESPath.

::

    - name: B站评论
      type: json_api
      url: https://api.bilibili.com/x/v2/reply/main
      params: {type: "1", oid: "1405963498", mode: "2"}
      items: "[data.replies[], data.replies[].replies[]][]"   # top-level replies and their replies
      fields: {id: rpid_str, text: content.message, author: member.uname,
               published_at: ctime, parent_id: parent_str, likes: like}
      pagination: {type: cursor, param: next, next: data.cursor.next, stop: data.cursor.is_end}

Pagination (``pagination.type``):

- ``page`` — ``param`` counts up from ``start``;
- ``cursor`` — ``param`` gets the value of the ``next`` expression of the previous page;
- ``next_url`` — the ``next`` expression is the URL of the next page.

Paging stops at an empty page, when ``stop`` is true, when the next cursor is
missing or repeats, after ``max_pages``, or — incremental polling — at the first
page whose items are all no newer than the newest item seen last time (kept in
the source's cursor as ``{"newest_time", "newest_id"}``; ``since_param`` sends
that id to APIs that filter themselves, e.g. Weibo's ``since_id``). A page that
fails fails the whole poll: nothing is stored, the cursor stays, the next run
starts again from the first page — no item is skipped.

A platform that changes its schema answers 200 with the records somewhere else: the
``items`` path then matches nothing and the poll would look healthy with 0 items forever.
So once the path has matched, ``missing_items_after`` (3) polls in a row whose first page
lacks it fail the source ("接口结构可能已变化: data.list 无匹配"). "Lacks" means the
path's leading keys are absent (``data.list`` of ``data.list[?x]``; every branch of
``[a[], b[]][]``): a path that holds an empty list, or null, is a legitimately empty
answer. The count lives in the cursor, so it survives restarts and a failed poll keeps it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from monitor.core.configtypes import Frozen
from monitor.core.errors import ParseError
from sources.base import FetchResult, RawItem, Source, SourceState
from sources.http import HttpFetcher, HttpSourceConfig
from sources.logquiet import QuietLog
from sources.mapping import FieldMap, RecordMapper, compile_expression, load_json, problem
from sources.normalise import MAX_FUTURE, as_utc
from sources.presets import expand_api

log = logging.getLogger(__name__)
_quiet = QuietLog(log)  # a warning that holds on every poll is said once per interval, with a count


class Pagination(Frozen):
    type: Literal["none", "page", "cursor", "next_url"] = "none"
    param: str | None = None  # query parameter of the page number / cursor
    start: int = 1  # first page number (type: page)
    next: str | None = None  # JMESPath: next cursor (cursor) or next URL (next_url)
    stop: str | None = None  # JMESPath: true on the last page
    max_pages: int = Field(default=5, ge=1, le=100)

    @field_validator("next", "stop")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_expression(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> "Pagination":
        if self.type in ("page", "cursor") and not self.param:
            raise ValueError(f"pagination type {self.type!r} needs 'param'")
        if self.type in ("cursor", "next_url") and not self.next:
            raise ValueError(f"pagination type {self.type!r} needs 'next'")
        return self


class JsonApiConfig(HttpSourceConfig):
    type: Literal["json_api"]
    preset: str | None = None  # see sources.presets.API_PRESETS
    args: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)  # query parameters
    items: str = "@"  # JMESPath selecting the list of records in a response
    fields: FieldMap = FieldMap()
    time_formats: tuple[str, ...] = ()  # strptime formats tried first for published_at
    pagination: Pagination = Pagination()
    since_param: str | None = None  # query parameter that receives the newest id seen
    # Polls in a row whose response lacks the items path (after it has matched) before the source fails; 0: never.
    missing_items_after: int = Field(default=3, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return expand_api(data) if isinstance(data, dict) else data

    @field_validator("items")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_expression(value)
        return value


class JsonApiSource(Source):
    config_model = JsonApiConfig
    config: JsonApiConfig

    def __init__(self, config: JsonApiConfig, *, fetcher: HttpFetcher | None = None):
        super().__init__(config)
        self._fetcher = fetcher or HttpFetcher.from_config(config)
        self._items = compile_expression(config.items)
        self._items_keys = _leading_keys(self._items.parsed)
        p = config.pagination
        self._next = compile_expression(p.next) if p.next else None
        self._stop = compile_expression(p.stop) if p.stop else None
        self._mapper = RecordMapper(config.fields, time_formats=config.time_formats, platform=config.platform)
        self._tz = ZoneInfo(config.timezone)
        self._accept = {} if "accept" in {k.lower() for k in config.headers} else {"Accept": "application/json"}

    def fetch(self, state: SourceState) -> FetchResult:
        cfg, pag = self.config, self.config.pagination
        cursor = _load_cursor(state.cursor)
        newest_time, newest_id = cursor.newest_time, cursor.newest_id
        matched, misses = cursor.matched, 0
        params = dict(cfg.params)
        if cfg.since_param and newest_id:
            params[cfg.since_param] = newest_id
        url: str = cfg.url
        page_no, cursor_value = pag.start, None
        items: list[RawItem] = []
        skipped: list[str] = []
        etag, last_modified = state.etag, state.last_modified
        for page in range(1, pag.max_pages + 1):
            query = dict(params)
            if pag.type == "page":
                query[pag.param] = str(page_no)
            elif pag.type == "cursor" and cursor_value is not None:
                query[pag.param] = cursor_value
            first = page == 1
            resp = self._fetcher.get(url, params=query, headers=self._accept,
                                     etag=etag if first else None, last_modified=last_modified if first else None)
            if resp.not_modified:
                return FetchResult(items=[], state=state, not_modified=True)
            if first:
                etag, last_modified = resp.etag, resp.last_modified
            doc = load_json(self.name, resp.body, resp.charset)
            if first:
                if self._lacks_items(doc):
                    misses = cursor.misses + 1 if matched else 0
                    if matched and 0 < cfg.missing_items_after <= misses:
                        raise ParseError(self.name, f"接口结构可能已变化: {cfg.items} 无匹配")
                else:
                    matched = True
            records = self._select(doc, page)
            page_items = self._map(records, page, skipped)
            items.extend(page_items)
            if not records or (self._stop is not None and self._stop.search(doc)):
                break
            if newest_time is not None and page_items and all(self._seen(i, newest_time) for i in page_items):
                break  # reached what the last poll already had
            if page == pag.max_pages:
                if pag.type != "none" and newest_time is not None:
                    _quiet.warning(self.name, "fetch", f"stopped after max_pages={pag.max_pages} before reaching "
                                   "the items of the last poll ({n} poll(s)); older new items may be missed "
                                   "(raise max_pages or poll more often)")
                break
            if pag.type == "none":
                break
            if pag.type == "page":
                page_no += 1
                continue
            nxt = self._next.search(doc) if self._next is not None else None
            if nxt in (None, "", False) or str(nxt) == cursor_value:
                break
            if pag.type == "cursor":
                cursor_value = str(nxt)
            else:
                url, params = urljoin(resp.url, str(nxt)), {}
        newest_time, newest_id = self._newest(items, newest_time, newest_id)
        new_state = replace(state, cursor=_Cursor(newest_time, newest_id, matched, misses).dump(), etag=etag,
                            last_modified=last_modified)
        return FetchResult(items=items, state=new_state, skipped=skipped)

    def _lacks_items(self, doc: Any) -> bool:
        """Whether ``doc`` lacks the items path altogether (a schema change), not merely has no records."""
        if self._items_keys is None:  # a path we cannot take apart: only "nothing at all" counts
            return self._items.search(doc) is None
        return not any(_has_keys(doc, keys) for keys in self._items_keys)

    def _select(self, doc: Any, page: int) -> list:
        records = self._items.search(doc)
        if records is None:
            return []
        if not isinstance(records, list):
            raise ParseError(self.name, f"page {page}: items expression {self.config.items!r} selected "
                                        f"{type(records).__name__}, expected a list")
        return records

    def _map(self, records: list, page: int, skipped: list[str]) -> list[RawItem]:
        out = []
        for index, record in enumerate(records):
            try:
                out.append(self._mapper.to_item(record))
            except Exception as exc:  # noqa: BLE001 - one record, not the poll
                skipped.append(f"page {page} item {index}: {problem(exc)}")
        return out

    def _aware(self, dt: datetime) -> datetime:
        return dt.replace(tzinfo=self._tz) if dt.tzinfo is None else dt

    def _seen(self, item: RawItem, newest_time: datetime) -> bool:
        return item.published_at is not None and self._aware(item.published_at) <= newest_time

    def _newest(self, items: list[RawItem], newest_time: datetime | None,
                newest_id: str | None) -> tuple[datetime | None, str | None]:
        horizon = datetime.now(timezone.utc) + MAX_FUTURE  # a bogus future time must not end paging early
        for item in items:
            t = as_utc(item.published_at, self._tz) if item.published_at is not None else None
            if t is None or t > horizon:
                continue
            if newest_time is None or t > newest_time:
                newest_time, newest_id = t, item.external_id
        return newest_time, newest_id

    def close(self) -> None:
        self._fetcher.close()


@dataclass(frozen=True)
class _Cursor:
    newest_time: datetime | None = None
    newest_id: str | None = None
    matched: bool = False  # the items path has been found in a response
    misses: int = 0  # polls in a row since then whose response lacked it

    def dump(self) -> str | None:
        data: dict[str, Any] = {}
        if self.newest_time is not None or self.newest_id is not None:
            data = {"newest_time": self.newest_time.isoformat() if self.newest_time else None,
                    "newest_id": self.newest_id}
        if self.matched:
            data["matched"] = True
        if self.misses:
            data["misses"] = self.misses
        return json.dumps(data) if data else None


def _load_cursor(raw: str | None) -> _Cursor:
    if not raw:
        return _Cursor()
    try:
        data = json.loads(raw)
        t = data.get("newest_time")
        newest_id = data.get("newest_id")
        # A cursor written before "matched" existed names an item only when items were found.
        matched = bool(data.get("matched", t is not None or newest_id is not None))
        misses = data.get("misses", 0)
        return _Cursor(datetime.fromisoformat(t) if t else None, newest_id, matched,
                       misses if isinstance(misses, int) and misses > 0 else 0)
    except (ValueError, AttributeError, TypeError):
        log.warning("unreadable json_api cursor %r, starting from the first page", raw)
        return _Cursor()


# JMESPath nodes that select from their first child's value: the keys of that child must exist.
_FROM_FIRST_CHILD = frozenset({"projection", "flatten", "filter_projection", "index_expression", "pipe"})


def _leading_keys(node: dict) -> list[tuple[str, ...]] | None:
    """The key paths an expression reads before anything else, one per branch
    (``data.cards[?t==`9`].mblog`` → ``[("data", "cards")]``; ``@`` → ``[()]``); None when unknown."""
    kind = node.get("type")
    children = node.get("children") or []
    if kind == "field":
        return [(node["value"],)]
    if kind in ("current", "identity"):
        return [()]
    if kind in _FROM_FIRST_CHILD and children:
        return _leading_keys(children[0])
    if kind == "subexpression" and len(children) == 2:
        heads, tails = _leading_keys(children[0]), _leading_keys(children[1])
        if heads is None:
            return None
        if len(heads) != 1 or tails is None or len(tails) != 1:
            return heads  # the right side reads no plain key path: the left side's keys still must exist
        return [heads[0] + tails[0]]
    if kind == "multi_select_list" and children:
        branches = [_leading_keys(c) for c in children]
        if any(b is None for b in branches):
            return None
        return [keys for b in branches for keys in b]  # type: ignore[union-attr]
    return None


def _has_keys(doc: Any, keys: tuple[str, ...]) -> bool:
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return False
        doc = doc[key]
    return True
