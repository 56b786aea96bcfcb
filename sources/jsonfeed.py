"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1) over HTTP.

Fetched like RSS (conditional GET, size limit, retries, slow-down). Each item's
``id`` is its external id (``url`` or a content hash when a broken feed leaves it
out); ``content_text`` is preferred to ``content_html`` and ``summary``; the
author is ``authors[0].name`` (1.1) or ``author.name`` (1.0). Items without any
text or title are skipped with a reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Literal

from monitor.core.errors import ParseError
from sources.base import FetchResult, RawItem, Source, SourceState
from sources.http import HttpFetcher, HttpSourceConfig
from sources.mapping import load_json, parse_time, problem, scalar
from sources.normalise import oldest_first

ACCEPT = "application/feed+json, application/json;q=0.9, */*;q=0.5"


class JsonFeedConfig(HttpSourceConfig):
    """A JSON Feed at ``url`` (timeout, user_agent, headers, proxy, max_bytes, retries … inherited)."""

    type: Literal["jsonfeed"]


class JsonFeedSource(Source):
    config_model = JsonFeedConfig
    config: JsonFeedConfig

    def __init__(self, config: JsonFeedConfig, *, fetcher: HttpFetcher | None = None):
        super().__init__(config)
        self._fetcher = fetcher or HttpFetcher.from_config(config)
        self._accept = {} if "accept" in {k.lower() for k in config.headers} else {"Accept": ACCEPT}

    def fetch(self, state: SourceState) -> FetchResult:
        resp = self._fetcher.get(self.config.url, etag=state.etag, last_modified=state.last_modified,
                                 headers=self._accept)
        if resp.not_modified:
            return FetchResult(items=[], state=state, not_modified=True)
        items, skipped = parse_jsonfeed(self.name, resp.body, resp.charset)
        items = [replace(i, platform=self.config.platform) for i in items]
        return FetchResult(items=items, state=replace(state, etag=resp.etag, last_modified=resp.last_modified),
                           skipped=skipped)

    def close(self) -> None:
        self._fetcher.close()


def parse_jsonfeed(source_name: str, body: bytes, declared_charset: str | None = None) -> tuple[list[RawItem], list[str]]:
    """Items (oldest first) and reasons for skipped ones; :class:`ParseError` if this is no JSON Feed."""
    doc = load_json(source_name, body, declared_charset)
    if not isinstance(doc, dict) or "jsonfeed.org/version/" not in str(doc.get("version", "")):
        raise ParseError(source_name, "not a JSON Feed: no jsonfeed.org \"version\"")
    entries = doc.get("items")
    if not isinstance(entries, list):
        raise ParseError(source_name, "not a JSON Feed: \"items\" is not a list")
    items: list[RawItem] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        try:
            items.append(_to_item(entry))
        except Exception as exc:  # noqa: BLE001 - one item, not the poll
            skipped.append(f"item {index}: {problem(exc)}")
    return oldest_first(items), skipped


def _to_item(entry: Any) -> RawItem:
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object, got {type(entry).__name__}")
    title = scalar(entry.get("title"))
    text = ""
    for key in ("content_text", "content_html", "summary"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            text = value
            break
    if not text and not title:
        raise ValueError("has neither title nor text")
    url = scalar(entry.get("url")) or scalar(entry.get("external_url"))
    external_id = scalar(entry.get("id")) or url
    if not external_id:
        external_id = "sha1:" + hashlib.sha1(f"{title or ''}\n{text}".encode("utf-8")).hexdigest()
    try:
        published = parse_time(entry.get("date_published") or entry.get("date_modified"))
    except ValueError:
        raise ValueError(f"unreadable date_published {entry.get('date_published')!r}") from None
    return RawItem(external_id=external_id, text=text, title=title, url=url, author=_author(entry),
                   published_at=published, extra={"tags": entry["tags"]} if isinstance(entry.get("tags"), list) else {})


def _author(entry: dict) -> str | None:
    authors = entry.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return scalar(authors[0].get("name"))
    author = entry.get("author")
    return scalar(author.get("name")) if isinstance(author, dict) else None
