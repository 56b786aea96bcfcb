"""Map JSON records (API responses, pushed items, JSONL/CSV rows) to :class:`RawItem`.

Every field is a JMESPath expression (https://jmespath.org) evaluated against
one record, e.g. ``mblog.user.screen_name`` or ``content.message``; plain key
names are valid expressions, keys with other characters are quoted
(``"用户名"``). Values are converted here, with a clear ``ValueError`` naming
the field when a record cannot be used:

- ids: strings or numbers (``123`` → ``"123"``);
- times: ISO 8601, epoch seconds or milliseconds, RFC 2822, Weibo's
  ``Tue May 07 10:20:30 +0800 2024``, or the configured ``time_formats``
  (``strptime``); naive times are in the source's timezone;
- counts: numbers or the strings Chinese sites show (``"1.2万"``, ``"3亿"``,
  ``"10万+"``, ``"1,024"``, ``"2.5k"``).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterable

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import field_validator

from monitor.core.configtypes import Frozen
from sources.base import RawItem

_BUILTIN_FORMATS = ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S",
                    "%Y/%m/%d %H:%M", "%Y年%m月%d日 %H:%M", "%Y-%m-%d")
_COUNT = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)\s*(万|亿|w|W|k|K)?\+?$")
_MULTIPLIERS = {None: 1, "万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000, "k": 1000, "K": 1000}


_PLAIN_SEGMENT = r"[^.\[\]|@`'\"(){}*,:!&<>=?\s]+"
_PLAIN_PATH = re.compile(rf"{_PLAIN_SEGMENT}(?:\.{_PLAIN_SEGMENT})*")


def compile_expression(expr: str) -> Any:
    """A compiled JMESPath expression; ``ValueError`` with the parser's message.

    A plain dotted path of names JMESPath would need quoted (``用户.昵称``, CSV
    headers) is quoted for the user: ``"用户"."昵称"``.
    """
    try:
        return jmespath.compile(expr)
    except JMESPathError as exc:
        if _PLAIN_PATH.fullmatch(expr):
            return jmespath.compile(".".join(f'"{seg}"' for seg in expr.split(".")))
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"invalid JMESPath expression {expr!r}: {first_line}") from None


class FieldMap(Frozen):
    """Where each mention field is in one record (JMESPath; None = not available)."""

    id: str = "id"
    text: str = "text"
    title: str | None = "title"
    author: str | None = "author"
    url: str | None = "url"
    published_at: str | None = "published_at"
    parent_id: str | None = "parent_id"  # comment threads: the id of the item replied to
    author_followers: str | None = "author_followers"
    likes: str | None = "likes"
    reposts: str | None = "reposts"
    comments: str | None = "comments"

    @field_validator("*")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_expression(value)
        return value


class RecordMapper:
    """Turns records into items with a :class:`FieldMap` (expressions compiled once)."""

    def __init__(self, fields: FieldMap, *, time_formats: Iterable[str] = (), platform: str | None = None):
        self.fields = fields
        self.time_formats = tuple(time_formats)
        self.platform = platform
        self._exprs = {name: compile_expression(expr) for name, expr in fields.model_dump().items() if expr}

    def _get(self, name: str, record: Any) -> Any:
        expr = self._exprs.get(name)
        if expr is None:
            return None
        try:
            return expr.search(record)
        except Exception as exc:  # e.g. a JMESPath function given the wrong type by this record
            raise ValueError(f"field {getattr(self.fields, name)!r}: {type(exc).__name__}: {exc}") from None

    def to_item(self, record: Any) -> RawItem:
        """The item for ``record``; ``ValueError`` (reason names the field) when it is unusable.

        Only ValueError, whatever the record holds: one odd record is skipped, never its poll.
        """
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        try:
            return self._to_item(record)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - a case the conversions below did not foresee
            raise ValueError(f"unusable record: {type(exc).__name__}: {exc}") from None

    def _to_item(self, record: dict) -> RawItem:
        f = self.fields
        external_id = scalar(self._get("id", record))
        if not external_id:
            raise ValueError(f"missing id ({f.id!r})")
        text = self._get("text", record)
        title = scalar(self._get("title", record))
        if not isinstance(text, str) or not text.strip():
            if text is not None and not isinstance(text, str):
                raise ValueError(f"item {external_id!r}: text ({f.text!r}) is not a string")
            if not title:
                raise ValueError(f"item {external_id!r}: missing text ({f.text!r})")
            text = ""
        raw_time = self._get("published_at", record)
        try:
            published_at = parse_time(raw_time, self.time_formats)
        except ValueError:
            raise ValueError(f"item {external_id!r}: unreadable time in {f.published_at!r}: {raw_time!r}") from None
        counts = {}
        for name in ("author_followers", "likes", "reposts", "comments"):
            raw = self._get(name, record)
            try:
                counts[name] = parse_count(raw)
            except ValueError:
                raise ValueError(f"item {external_id!r}: unreadable count in {getattr(f, name)!r}: {raw!r}") from None
        return RawItem(
            external_id=external_id,
            text=text,
            title=title,
            url=scalar(self._get("url", record)),
            author=scalar(self._get("author", record)),
            published_at=published_at,
            parent_id=_parent(self._get("parent_id", record)),
            platform=self.platform,
            **counts,
        )


def problem(exc: Exception) -> str:
    """The skip reason for an exception raised by one item: a ValueError's message; anything else with its type.

    Per-item loops catch every Exception (a 100,000-deep JSON line raises RecursionError,
    a 200 kB CSV field csv.Error): one item is skipped, the poll and the cursor go on.
    """
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _parent(value: Any) -> str | None:
    # Bilibili and others use 0 for "no parent".
    text = scalar(value)
    return None if text in (None, "0") else text


def scalar(value: Any) -> str | None:
    """A non-empty string for a string or number; None for missing, empty, bool, list, dict."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value).strip()
    return text or None


def parse_count(value: Any) -> int | None:
    """``1234``, ``"1,234"``, ``"1.2万"``, ``"3亿"``, ``"10万+"``, ``"2.5k"`` → int; None when missing."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("boolean is not a count")
    try:
        if isinstance(value, (int, float)):
            if value < 0:
                raise ValueError("negative count")
            return int(value)
        if isinstance(value, str):
            m = _COUNT.match(value.strip())
            if m:
                return int(round(float(m.group(1).replace(",", "")) * _MULTIPLIERS[m.group(2)]))
    except OverflowError:  # 1e999 is inf in JSON
        raise ValueError(f"not a count: {value!r}") from None
    raise ValueError(f"not a count: {value!r}")


def parse_time(value: Any, formats: Iterable[str] = ()) -> datetime | None:
    """A datetime (naive when the value has no offset) or None for missing/empty.

    Numbers (or numeric strings) are epoch seconds, or milliseconds from 1e11 on.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("boolean is not a time")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            return _parse_time_text(text, formats)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"unsupported time value {value!r}")


def _parse_time_text(text: str, formats: Iterable[str]) -> datetime:
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        pass
    for fmt in _BUILTIN_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"unreadable time {text!r}") from None


def load_json(source_name: str, body: bytes, declared_charset: str | None = None) -> Any:
    """Parse a fetched JSON document; :class:`ParseError` with a clear reason otherwise."""
    import json

    from monitor.core.errors import ParseError
    from sources.charset import decode

    if not body.strip():
        raise ParseError(source_name, "not JSON: empty body")
    text = decode(body, declared_charset)[0].lstrip("\ufeff")
    if text.lstrip()[:1] == "<":
        kind = "an HTML page" if "<html" in text[:2048].lower() else "XML/HTML"
        raise ParseError(source_name, f"not JSON: got {kind} (login wall or error page?)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise ParseError(source_name, f"not JSON: truncated after {len(body)} bytes ({exc.msg})") from None
        raise ParseError(source_name, f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
