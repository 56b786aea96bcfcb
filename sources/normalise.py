"""Turn a :class:`RawItem` into a :class:`Mention`: clean text, UTC times, hash.

Pure functions, no I/O. Cleaning keeps what a reader sees: HTML tags are
dropped (``<br>`` and block ends become newlines), entities are unescaped,
template markers like ``{%...%}`` are removed, Weibo emoticons such as ``[怒]``
stay as text (also when they arrive as ``<img alt="[怒]">``), and whitespace is
collapsed. The original text is kept in ``Mention.raw_text``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone, tzinfo
from html.parser import HTMLParser
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.core.domain import Mention
from monitor.core.text import ZERO_WIDTH
from sources.base import RawItem

# Published times further ahead of the fetch time than this, or before 1970, are
# treated as bogus (wrong timezone, clock skew, typos, 0001-01-01 placeholders) and
# replaced by the fetch time, as a missing time is.
MAX_FUTURE = timedelta(days=1)
MIN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The stored columns' sizes (monitor/storage/models.py): one absurd item must not fail a poll's insert.
MAX_ID = 500
MAX_AUTHOR = 200
MAX_COUNT = 2**63 - 1

_BREAK_TAGS = frozenset({"br"})
_BLOCK_TAGS = frozenset({
    "p", "div", "li", "ul", "ol", "tr", "table", "blockquote", "pre", "section",
    "article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
})
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # unescapes &amp; &#20320; etc. in text
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BREAK_TAGS or tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            # Emoticon images carry their name as alt text, e.g. alt="[怒]".
            if alt.startswith("[") and alt.endswith("]") and len(alt) <= 12:
                self.parts.append(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:  # <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA[") and not self._skip_depth:
            self.parts.append(data[len("CDATA["):])


def strip_html(text: str) -> str:
    """Text content of an HTML fragment (entities unescaped, ``<br>`` -> newline)."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def remove_markers(text: str) -> str:
    """Drop ``{%...%}`` template markers; an unclosed ``{%`` is left as is."""
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("{%", pos)
        end = text.find("%}", start + 2) if start != -1 else -1
        if start == -1 or end == -1:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:start])
        pos = end + 2


def collapse_whitespace(text: str) -> str:
    """One space between words, one newline between non-empty lines."""
    text = text.translate(ZERO_WIDTH)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def clean_text(text: str) -> str:
    """The full cleaning chain applied to mention text."""
    return collapse_whitespace(remove_markers(strip_html(text)))


def content_hash(text: str) -> str:
    """sha1 of the cleaned text, lowercased, all whitespace removed."""
    key = "".join(text.lower().split())
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def to_utc(value: datetime | None, *, tz: str, fetched_at: datetime) -> datetime:
    """Aware UTC time for ``value``; naive values are local time in ``tz``.

    ``None`` becomes ``fetched_at``, and so does a time outside :data:`MIN_TIME`
    … ``fetched_at`` + :data:`MAX_FUTURE` (including one too close to year 1 or
    9999 to convert at all).
    """
    fetched = fetched_at.astimezone(timezone.utc)
    if value is None:
        return fetched
    result = as_utc(value, _zone(tz) if _naive(value) else timezone.utc)
    if result is None or result < MIN_TIME or result - fetched > MAX_FUTURE:
        return fetched
    return result


def as_utc(value: datetime, zone: tzinfo) -> datetime | None:
    """``value`` in UTC (a naive one is local time in ``zone``); None when it has no UTC equivalent.

    0001-01-01 00:00 at +08:00 is before year 1 in UTC: ``astimezone`` raises for it.
    """
    if _naive(value):
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def oldest_first(items: list[RawItem]) -> list[RawItem]:
    """Feed items (listed newest first) in publication order; undated ones count as newest.

    Document order is reversed first, so items of the same time keep their order, oldest first.
    """
    def key(item: RawItem) -> tuple[bool, datetime]:
        t = as_utc(item.published_at, timezone.utc) if item.published_at is not None else None
        return t is None, t or MIN_TIME

    return sorted(reversed(items), key=key)


def _naive(value: datetime) -> bool:
    return value.tzinfo is None or value.utcoffset() is None


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {tz!r}") from None


def normalise(item: RawItem, *, source: str, tz: str, fetched_at: datetime) -> Mention:
    """Build the :class:`Mention` for ``item``.

    Raises ``ValueError`` (with the reason) for an item with neither text nor
    title after cleaning, an empty id, or any field that cannot be used (the
    reason names it: one odd item is skipped, never its whole poll);
    ``TypeError`` for a naive ``fetched_at`` (a caller bug, not a data problem).
    Absurd values that have a meaning are kept as well as they fit: a time out of
    range is the fetch time, a count out of range is unknown, an id longer than
    the column is its hash, an author name is cut.
    """
    if fetched_at.tzinfo is None or fetched_at.utcoffset() is None:
        raise TypeError("fetched_at must be timezone-aware")
    field = "external_id"
    try:
        external_id = _bounded_id(item.external_id)
        if not external_id:
            raise ValueError("item has an empty external_id")
        field = "text"
        text = clean_text(item.text or "")
        field = "title"
        title = " ".join(clean_text(item.title).split()) if item.title else ""
        if not text and not title:
            raise ValueError(f"item {external_id!r} has no text or title after cleaning")
        # Title-only items (some feeds) are matched and scored on their title.
        text = text or title
        field = "published_at"
        published_at = to_utc(item.published_at, tz=tz, fetched_at=fetched_at)
        field = "url, author or parent_id"
        url, author, parent_id = _blank_to_none(item.url), _blank_to_none(item.author), _bounded_id(item.parent_id)
        field = "counts"
        counts = {name: _count(getattr(item, name)) for name in ("author_followers", "likes", "reposts", "comments")}
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a field does, it costs its item only
        raise ValueError(f"unusable {field}: {type(exc).__name__}: {exc}") from exc
    return Mention(
        source=source,
        external_id=external_id,
        text=text,
        raw_text=item.text or "",
        published_at=published_at,
        fetched_at=fetched_at.astimezone(timezone.utc),
        content_hash=content_hash(text),
        url=url,
        author=author[:MAX_AUTHOR] if author else None,
        title=title or None,
        parent_id=parent_id,
        platform=item.platform,
        rank=_rank(item.extra.get("rank")) if item.extra else None,
        **counts,
    )


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _bounded_id(value: str | None) -> str | None:
    """``value`` stripped; longer than the column: ``sha1:`` of it (stable, so a reply's parent_id still matches)."""
    value = _blank_to_none(value)
    if value is None or len(value) <= MAX_ID:
        return value
    return "sha1:" + hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()


def _rank(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _count(value: int | None) -> int | None:
    # A count no column can hold (or no count at all) is unknown, not a reason to lose the item.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        return None
    return value
