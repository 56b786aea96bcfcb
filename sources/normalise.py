"""Turn a :class:`RawItem` into a :class:`Mention`: clean text, UTC times, hash.

Pure functions, no I/O. Cleaning keeps what a reader sees: HTML tags are
dropped (``<br>`` and block ends become newlines), entities are unescaped,
template markers like ``{%...%}`` are removed, Weibo emoticons such as ``[怒]``
stay as text (also when they arrive as ``<img alt="[怒]">``), and whitespace is
collapsed. The original text is kept in ``Mention.raw_text``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.core.domain import Mention
from monitor.core.text import ZERO_WIDTH
from sources.base import RawItem

# Published times further ahead of the fetch time than this are treated as
# bogus (wrong timezone, clock skew, typos) and clamped to the fetch time.
MAX_FUTURE = timedelta(days=1)

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

    ``None`` becomes ``fetched_at``; more than :data:`MAX_FUTURE` ahead of
    ``fetched_at`` is clamped to ``fetched_at``.
    """
    fetched = fetched_at.astimezone(timezone.utc)
    if value is None:
        return fetched
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=_zone(tz))
    result = value.astimezone(timezone.utc)
    if result - fetched > MAX_FUTURE:
        return fetched
    return result


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {tz!r}") from None


def normalise(item: RawItem, *, source: str, tz: str, fetched_at: datetime) -> Mention:
    """Build the :class:`Mention` for ``item``.

    Raises ``ValueError`` (with the reason) for an item with neither text nor
    title after cleaning, or an empty id; ``TypeError`` for a naive
    ``fetched_at`` (a caller bug, not a data problem).
    """
    if fetched_at.tzinfo is None or fetched_at.utcoffset() is None:
        raise TypeError("fetched_at must be timezone-aware")
    external_id = item.external_id.strip()
    if not external_id:
        raise ValueError("item has an empty external_id")
    text = clean_text(item.text or "")
    title = " ".join(clean_text(item.title).split()) if item.title else ""
    if not text and not title:
        raise ValueError(f"item {external_id!r} has no text or title after cleaning")
    # Title-only items (some feeds) are matched and scored on their title.
    text = text or title
    return Mention(
        source=source,
        external_id=external_id,
        text=text,
        raw_text=item.text or "",
        published_at=to_utc(item.published_at, tz=tz, fetched_at=fetched_at),
        fetched_at=fetched_at.astimezone(timezone.utc),
        content_hash=content_hash(text),
        url=_blank_to_none(item.url),
        author=_blank_to_none(item.author),
        title=title or None,
        parent_id=_blank_to_none(item.parent_id),
        platform=item.platform,
        author_followers=item.author_followers,
        likes=item.likes,
        reposts=item.reposts,
        comments=item.comments,
    )


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None
