"""A JSON Lines file that another tool appends to (exports, crawlers, tests).

Each poll reads the complete lines appended since the cursor. The cursor is a
small JSON document ``{"offset": N, "line": L, "inode": I, "head": H}``: the
byte offset after the last consumed line, the number of lines consumed so far
(for ``path:lineno`` messages), the file's inode and a hash of its first bytes.
When the file shrank, was replaced (new inode) or rewritten (new head), reading
starts again from 0 — downstream dedup makes re-reading safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, replace
from typing import Any, Literal

from monitor.core.errors import FetchError
from sources.base import FetchResult, RawItem, Source, SourceConfig, SourceState
from sources.mapping import parse_time, problem, scalar

log = logging.getLogger(__name__)

MAX_LINES_PER_POLL = 5000
_HEAD_BYTES = 256
_BOM = b"\xef\xbb\xbf"


class JsonlFileConfig(SourceConfig):
    """Field names may be dotted paths into nested objects, e.g. ``user.screen_name``."""

    type: Literal["jsonl"]
    path: str
    id_field: str = "id"
    text_field: str = "text"
    author_field: str = "author"
    url_field: str = "url"
    time_field: str = "published_at"
    title_field: str = "title"
    parent_field: str = "parent_id"


@dataclass(frozen=True)
class _Cursor:
    offset: int = 0
    line: int | None = None
    inode: int | None = None
    head: str | None = None

    @classmethod
    def load(cls, raw: str | None) -> "_Cursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            offset = int(data["offset"])
            line = data.get("line")
            if offset < 0 or not (line is None or isinstance(line, int)):
                raise ValueError(raw)
            return cls(offset, line, data.get("inode"), data.get("head"))
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("unreadable jsonl cursor %r, reading from the start", raw)
            return cls()

    def dump(self) -> str:
        return json.dumps(
            {"offset": self.offset, "line": self.line, "inode": self.inode, "head": self.head}
        )


class JsonlFileSource(Source):
    config_model = JsonlFileConfig
    config: JsonlFileConfig

    def __init__(self, config: JsonlFileConfig, *, max_lines: int = MAX_LINES_PER_POLL):
        super().__init__(config)
        self.path = os.path.expanduser(config.path)
        self.max_lines = max_lines

    def fetch(self, state: SourceState) -> FetchResult:
        cursor = _Cursor.load(state.cursor)
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                offset, lineno = cursor.offset, (cursor.line if cursor.offset else 0)
                if _rotated(f, st, cursor):
                    log.info("source %r: %s was truncated or replaced, reading from the start",
                             self.name, self.path)
                    offset, lineno = 0, 0
                items, skipped, end, lineno = self._read(f, offset, lineno)
                head = _head_hash(f, end)
        except FileNotFoundError as exc:
            raise FetchError(self.name, f"file not found: {self.path}") from exc
        except OSError as exc:
            raise FetchError(self.name, f"cannot read {self.path}: {exc.strerror or exc}") from exc
        new_cursor = _Cursor(end, lineno, st.st_ino, head)
        return FetchResult(items=items, state=replace(state, cursor=new_cursor.dump()), skipped=skipped)

    def _read(
        self, f: Any, offset: int, lineno: int | None
    ) -> tuple[list[RawItem], list[str], int, int]:
        """Consume up to ``max_lines`` complete lines from ``offset``.

        Returns items, skip reasons, and the offset and line count after the
        last consumed line.
        """
        if lineno is None:  # cursor written without a line count
            lineno = _count_lines_before(f, offset)
        f.seek(offset)
        items: list[RawItem] = []
        skipped: list[str] = []
        consumed = 0
        while consumed < self.max_lines:
            line = f.readline()
            if not line.endswith(b"\n"):
                break  # EOF or a partial line still being written: next poll
            offset += len(line)
            lineno += 1
            consumed += 1
            if lineno == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            if not line.strip():
                continue
            where = f"{self.path}:{lineno}"
            try:
                items.append(self._to_item(line))
            except Exception as exc:  # noqa: BLE001 - one line, not the poll (the cursor moves on)
                skipped.append(f"{where}: {problem(exc)}")
        return items, skipped, offset, lineno

    def _to_item(self, line: bytes) -> RawItem:
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        c = self.config
        external_id = scalar(_get(record, c.id_field))
        if not external_id:
            raise ValueError(f"missing id field {c.id_field!r}")
        text = _get(record, c.text_field)
        if not isinstance(text, str):
            raise ValueError(f"missing text field {c.text_field!r}")
        raw_time = _get(record, c.time_field)
        try:
            published_at = parse_time(raw_time)
        except ValueError:
            raise ValueError(f"unreadable time in {c.time_field!r}: {raw_time!r}") from None
        return RawItem(
            external_id=external_id,
            text=text,
            title=scalar(_get(record, c.title_field)),
            url=scalar(_get(record, c.url_field)),
            author=scalar(_get(record, c.author_field)),
            published_at=published_at,
            parent_id=scalar(_get(record, c.parent_field)),
            platform=c.platform,
        )


def _get(record: dict[str, Any], field: str) -> Any:
    if field in record:
        return record[field]
    cur: Any = record
    for part in field.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _head_hash(f: Any, consumed: int) -> str:
    """Hash of the first bytes already consumed (those never change while appending)."""
    f.seek(0)
    return hashlib.sha1(f.read(min(consumed, _HEAD_BYTES))).hexdigest()[:16]


def _rotated(f: Any, st: os.stat_result, cursor: _Cursor) -> bool:
    """True when the file is no longer the one the cursor points into."""
    if cursor.offset == 0:
        return False
    if st.st_size < cursor.offset:
        return True  # truncated
    if cursor.inode is not None and cursor.inode != st.st_ino:
        return True  # replaced (logrotate: rename + create)
    # Same inode and size, different start: rewritten in place (copytruncate + refill).
    return cursor.head is not None and _head_hash(f, cursor.offset) != cursor.head


def _count_lines_before(f: Any, offset: int) -> int:
    """Line number of the line starting at ``offset`` minus one (for path:lineno)."""
    pos = f.tell()
    f.seek(0)
    count, remaining = 0, offset
    while remaining > 0:
        chunk = f.read(min(1 << 20, remaining))
        if not chunk:
            break
        count += chunk.count(b"\n")
        remaining -= len(chunk)
    f.seek(pos)
    return count
