"""RSS / Atom feeds (RSS 0.9x, 1.0, 2.0, Atom 0.3/1.0), e.g. RSSHub routes.

The feed is fetched with :mod:`sources.http` (conditional GET, size limit,
retries, slow-down), decoded with :mod:`sources.charset` (the declared charset
when the bytes fit it, else detected: GBK / GB18030 / Big5 feeds are common and
often mislabelled), vetted by :mod:`sources.safexml` (a document declaring XML
entities anywhere is refused: entity-expansion bombs; entries cut off by a
truncated transfer are found) and parsed with feedparser.

``preset`` (see :mod:`sources.presets`) builds the URL of an RSSHub route from
``rsshub`` (the instance) and ``args``, sets ``platform`` and applies the route's
clean-up (e.g. Bilibili replies' ``"name : text"``).
"""

from __future__ import annotations

import functools
import calendar
import hashlib
import logging
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, model_validator

from monitor.core.errors import ParseError
from sources import charset, safexml
from sources.base import FetchResult, RawItem, Source, SourceState
from sources.http import HttpFetcher, HttpSourceConfig
from sources.logquiet import QuietLog
from sources.mapping import problem
from sources.normalise import oldest_first
from sources.presets import RSS_PRESETS, expand_rss

log = logging.getLogger(__name__)
_quiet = QuietLog(log)  # a feed malformed on every poll is said once per interval, with a count



@functools.cache
def _feedparser():
    """feedparser, imported on first use (a config load need not pay for it), reading through safexml.

    Its strict pass reads through safexml's defused expat reader too (it takes the first SAX driver
    of this list that imports): should a declaration ever get past safexml.vet, it raises instead
    of being expanded.
    """
    import feedparser

    if safexml.__name__ not in feedparser.api.PREFERRED_XML_PARSERS:
        feedparser.api.PREFERRED_XML_PARSERS.insert(0, safexml.__name__)
    return feedparser

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)


class RssSourceConfig(HttpSourceConfig):
    """An RSS or Atom feed at ``url`` (timeout, user_agent, headers, proxy, max_bytes inherited)."""

    type: Literal["rss"]
    preset: str | None = None  # an RSSHub route from sources.presets.RSS_PRESETS; builds ``url``
    rsshub: str | None = None  # the RSSHub instance for a preset (default https://rsshub.app)
    args: dict[str, str] = Field(default_factory=dict)  # the preset's route arguments

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return expand_rss(data) if isinstance(data, dict) else data


class RssSource(Source):
    config_model = RssSourceConfig
    config: RssSourceConfig

    def __init__(self, config: RssSourceConfig, *, fetcher: HttpFetcher | None = None):
        super().__init__(config)
        self._fetcher = fetcher or HttpFetcher.from_config(config)
        # A configured Accept header wins over the feed default.
        configured = {k.lower() for k in config.headers}
        self._accept = {} if "accept" in configured else {"Accept": FEED_ACCEPT}

    def fetch(self, state: SourceState) -> FetchResult:
        resp = self._fetcher.get(
            self.config.url,
            etag=state.etag,
            last_modified=state.last_modified,
            headers=self._accept,
        )
        if resp.not_modified:
            return FetchResult(items=[], state=state, not_modified=True)
        items, skipped = parse_feed(self.name, resp.body, content_type=resp.content_type)
        fix = RSS_PRESETS[self.config.preset].fix if self.config.preset else None
        items = [replace(fix(i) if fix else i, platform=self.config.platform) for i in items]
        # Validators of this response; the pipeline persists them only after the
        # items are stored. A server that stopped sending one gets None back.
        new_state = replace(state, etag=resp.etag, last_modified=resp.last_modified)
        return FetchResult(items=items, state=new_state, skipped=skipped)

    def close(self) -> None:
        self._fetcher.close()


def parse_feed(
    source_name: str, body: bytes, *, content_type: str | None = None
) -> tuple[list[RawItem], list[str]]:
    """Parse feed bytes into items (oldest first) and reasons for skipped entries.

    Raises :class:`ParseError` when ``body`` is not a feed at all.
    """
    if not body.strip():
        raise ParseError(source_name, "not a feed: empty body")
    declared = _content_charset(content_type)
    text, _codec = charset.decode(body, declared)
    # Hand feedparser UTF-8 with a prolog that says so: the charset question is settled.
    vetted = safexml.vet(source_name, _XML_ENCODING.sub(r"\1utf-8\2", text, count=1).encode("utf-8"))
    headers = {"content-type": _with_utf8(content_type)}
    try:
        # No HTML sanitising or link rewriting: normalise reduces every fragment to its text (scripts
        # and styles dropped) and nothing renders the raw HTML — and they were half of all parsing.
        parsed = _feedparser().parse(vetted.data, response_headers=headers, sanitize_html=False,
                                     resolve_relative_uris=False)
    except Exception as exc:  # feedparser is lenient; anything escaping is a bad payload
        raise ParseError(source_name, f"not a feed: {type(exc).__name__}: {exc}") from exc

    entries = parsed.get("entries") or []
    skipped: list[str] = []
    cut = vetted.complete_entries
    if cut is not None and len(entries) > cut:
        # The transfer stopped inside this entry: what feedparser recovered of it
        # (often the title alone) is not the item, and a stored item is never replaced.
        skipped.append(f"entry {cut}: cut off (the document ends inside it)")
        entries = entries[:cut]
        if not entries:
            raise ParseError(source_name, f"not a feed: truncated inside its first entry ({_bozo_message(parsed)})")
    if not entries:
        if parsed.get("bozo"):
            raise ParseError(source_name, f"not a feed: {_bozo_message(parsed)}")
        if not parsed.get("version"):
            # Well-formed XML (e.g. an XHTML page) that is no known feed format.
            raise ParseError(source_name, "not a feed: no RSS or Atom root element")
        return [], []

    items: list[RawItem] = []
    for index, entry in enumerate(entries):
        try:
            item = _entry_to_item(entry)
        except Exception as exc:  # noqa: BLE001 - one entry, not the poll
            skipped.append(f"entry {index}: {problem(exc)}")
            continue
        if item is None:
            skipped.append(f"entry {index}: has neither title nor text")
        else:
            items.append(item)
    if not items and parsed.get("bozo"):
        # e.g. a feed cut off inside its first <item>: nothing usable was recovered.
        raise ParseError(source_name, f"not a feed: {_bozo_message(parsed)}")
    if parsed.get("bozo"):
        _quiet.warning(source_name, "parse", "feed malformed in {n} poll(s); the entries found were read",
                       example=_bozo_message(parsed))
    return oldest_first(items), skipped


_XML_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])[A-Za-z0-9._:-]+(["'])""", re.I)


def _content_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", content_type, re.I)
    return m.group(1) if m else None


def _with_utf8(content_type: str | None) -> str:
    media = (content_type or "application/xml").split(";", 1)[0].strip() or "application/xml"
    return f"{media}; charset=utf-8"


def _bozo_message(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    if exc is None:
        return "malformed document"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _entry_to_item(entry: Any) -> RawItem | None:
    title = (entry.get("title") or "").strip() or None
    text = _entry_text(entry)
    if not title and not text:
        return None
    link = (entry.get("link") or "").strip() or None
    return RawItem(
        external_id=_entry_id(entry, title, text, link),
        text=text,
        title=title,
        url=link,
        author=(entry.get("author") or "").strip() or None,
        published_at=_entry_time(entry),
        extra=_entry_extra(entry),
    )


def _entry_text(entry: Any) -> str:
    # content (Atom <content>, RSS <content:encoded>) is the full text when
    # present; summary covers <description> / <summary>.
    for content in entry.get("content") or []:
        value = (content.get("value") or "").strip()
        if value:
            return value
    return (entry.get("summary") or entry.get("description") or "").strip()


def _entry_id(entry: Any, title: str | None, text: str, link: str | None) -> str:
    guid = (entry.get("id") or "").strip()  # feedparser maps <guid> and Atom <id> here
    if guid:
        return guid
    if link:
        return link
    # Neither id nor link: derive a stable id from the content so that the
    # same entry gets the same id on every poll (dedup downstream relies on it).
    digest = hashlib.sha1(f"{title or ''}\n{text}".encode("utf-8")).hexdigest()
    return f"sha1:{digest}"


def _entry_time(entry: Any) -> datetime | None:
    # feedparser's *_parsed values are struct_time already converted to UTC.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if isinstance(value, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _entry_extra(entry: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    tags = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
    if tags:
        extra["tags"] = tags
    return extra
