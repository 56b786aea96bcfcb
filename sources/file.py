"""JSONL or CSV files — one file or every matching file of a directory — for imports and replay.

Each poll reads the complete records appended since the last one (a partial
last line waits for the next run). Fields are mapped with JMESPath like
``json_api`` (a CSV row is an object keyed by its header: ``fields: {text: "内容"}``).

- ``format``: ``jsonl`` or ``csv``; ``auto`` (default) goes by the extension
  (``.csv`` / ``.tsv`` are CSV, anything else JSON Lines).
- ``encoding``: ``auto`` (default) takes UTF-8 when the file is UTF-8 and
  otherwise detects it once per file (Excel exports in China are often GBK).
- Directories: files matching ``pattern`` are read in name order; a new file is
  read from its start.

The cursor records, per file, the byte offset after the last consumed record,
the records consumed, the inode and a hash of the first bytes: a file that shrank,
was replaced or rewritten is read again from the start (inserts are idempotent,
so re-reading never duplicates).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from fnmatch import fnmatch
from typing import Any, Literal

from pydantic import Field

from monitor.core.errors import FetchError
from sources import charset
from sources.base import FetchResult, RawItem, Source, SourceConfig, SourceState
from sources.mapping import FieldMap, RecordMapper, problem

log = logging.getLogger(__name__)

_HEAD_BYTES = 256
_CSV_EXTENSIONS = (".csv", ".tsv")


class FileSourceConfig(SourceConfig):
    type: Literal["file"]
    path: str  # a file or a directory
    pattern: str = "*"  # directory: which files (fnmatch), e.g. "*.jsonl"
    format: Literal["auto", "jsonl", "csv"] = "auto"
    encoding: str = "auto"
    delimiter: str = Field(default=",", min_length=1, max_length=1)  # CSV (".tsv": tab)
    fields: FieldMap = FieldMap()
    time_formats: tuple[str, ...] = ()
    max_records: int = Field(default=5000, ge=1)  # per poll, over all files


class FileSource(Source):
    config_model = FileSourceConfig
    config: FileSourceConfig

    def __init__(self, config: FileSourceConfig):
        super().__init__(config)
        self.path = os.path.expanduser(config.path)
        self._mapper = RecordMapper(config.fields, time_formats=config.time_formats, platform=config.platform)

    def fetch(self, state: SourceState) -> FetchResult:
        cursor = _load(state.cursor)
        items: list[RawItem] = []
        skipped: list[str] = []
        budget = self.config.max_records
        new_cursor: dict[str, dict] = {}
        for path in self._files():
            key = os.path.basename(path) if os.path.isdir(self.path) else path
            entry = cursor.get(key, {})
            if budget > 0:
                entry = self._read_file(path, entry, items, skipped, budget)
                budget = self.config.max_records - len(items) - len(skipped)
            new_cursor[key] = entry
        return FetchResult(items=items, state=_with_cursor(state, new_cursor), skipped=skipped)

    def _files(self) -> list[str]:
        try:
            if os.path.isdir(self.path):
                names = sorted(n for n in os.listdir(self.path) if fnmatch(n, self.config.pattern))
                return [p for p in (os.path.join(self.path, n) for n in names) if os.path.isfile(p)]
        except OSError as exc:
            raise FetchError(self.name, f"cannot list {self.path}: {exc.strerror or exc}") from exc
        if not os.path.exists(self.path):
            raise FetchError(self.name, f"file not found: {self.path}")
        return [self.path]

    def _format(self, path: str) -> str:
        if self.config.format != "auto":
            return self.config.format
        return "csv" if path.lower().endswith(_CSV_EXTENSIONS) else "jsonl"

    def _read_file(self, path: str, entry: dict, items: list, skipped: list, budget: int) -> dict:
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                offset, lineno = int(entry.get("offset", 0)), int(entry.get("line", 0))
                if offset and _rotated(f, st, entry):
                    log.info("source %r: %s was truncated or replaced, reading from the start", self.name, path)
                    offset, lineno, entry = 0, 0, {}
                encoding = entry.get("encoding") or self._encoding(f)
                fmt = self._format(path)
                header = self._header(f, encoding) if fmt == "csv" else None
                if fmt == "csv" and offset == 0 and header is not None:
                    f.seek(0)
                    offset, lineno = len(f.readline()), 1  # the header is not a record
                f.seek(offset)
                consumed = 0
                while consumed < budget:
                    record, raw_lines, size = _next_record(f, csv_mode=fmt == "csv")
                    if record is None:
                        break  # EOF or an incomplete record still being written
                    offset += size
                    start_line = lineno + 1
                    lineno += raw_lines
                    consumed += 1
                    if not record.strip():
                        continue
                    where = f"{path}:{start_line}"
                    try:
                        items.append(self._to_item(record, encoding, header, fmt, lineno == raw_lines))
                    except Exception as exc:  # noqa: BLE001 - one record, not the poll (the cursor moves on)
                        skipped.append(f"{where}: {problem(exc)}")
                head = _head_hash(f, offset)
        except OSError as exc:
            raise FetchError(self.name, f"cannot read {path}: {exc.strerror or exc}") from exc
        return {"offset": offset, "line": lineno, "inode": st.st_ino, "head": head, "encoding": encoding}

    def _encoding(self, f: Any) -> str:
        if self.config.encoding != "auto":
            return self.config.encoding
        pos = f.tell()
        f.seek(0)
        sample = f.read(65536)
        f.seek(pos)
        # Cut at the last newline so a multi-byte character split by the sample does not mislead.
        cut = sample.rfind(b"\n")
        return charset.decode(sample[: cut + 1] if cut > 0 else sample)[1]

    def _header(self, f: Any, encoding: str) -> list[str] | None:
        f.seek(0)
        line = f.readline()
        if not line.endswith(b"\n"):
            return None
        text = _decode(line, encoding).lstrip("\ufeff").strip("\r\n")
        return next(csv.reader([text], delimiter=self._delimiter()))

    def _delimiter(self) -> str:
        return "\t" if self.path.lower().endswith(".tsv") and self.config.delimiter == "," else self.config.delimiter

    def _to_item(self, raw: bytes, encoding: str, header: list[str] | None, fmt: str, first: bool) -> RawItem:
        text = _decode(raw, encoding)
        if first:
            text = text.lstrip("\ufeff")
        if fmt == "csv":
            [row] = list(csv.reader(io.StringIO(text), delimiter=self._delimiter())) or [[]]
            if header is None or len(row) != len(header):
                raise ValueError(f"expected {len(header or [])} CSV columns, got {len(row)}")
            return self._mapper.to_item(dict(zip(header, row)))
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        return self._mapper.to_item(record)


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise ValueError(f"not {encoding}") from None
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None


def _next_record(f: Any, *, csv_mode: bool) -> tuple[bytes | None, int, int]:
    """The next complete record: (bytes, lines, size); (None, 0, 0) at EOF / partial record.

    A CSV record continues over newlines inside a quoted field.
    """
    start = f.tell()
    parts: list[bytes] = []
    lines = 0
    while True:
        line = f.readline()
        if not line.endswith(b"\n"):
            f.seek(start)
            return None, 0, 0
        parts.append(line)
        lines += 1
        if not csv_mode or b"".join(parts).count(b'"') % 2 == 0:
            record = b"".join(parts)
            return record, lines, len(record)


def _load(raw: str | None) -> dict[str, dict]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        files = data["files"]
        if not isinstance(files, dict):
            raise ValueError(raw)
        return files
    except (ValueError, TypeError, KeyError):
        log.warning("unreadable file cursor %r, reading from the start", raw)
        return {}


def _with_cursor(state: SourceState, files: dict[str, dict]) -> SourceState:
    from dataclasses import replace

    return replace(state, cursor=json.dumps({"files": files}, ensure_ascii=False))


def _head_hash(f: Any, consumed: int) -> str:
    f.seek(0)
    return hashlib.sha1(f.read(min(consumed, _HEAD_BYTES))).hexdigest()[:16]


def _rotated(f: Any, st: os.stat_result, entry: dict) -> bool:
    offset = int(entry.get("offset", 0))
    if st.st_size < offset:
        return True
    if entry.get("inode") is not None and entry["inode"] != st.st_ino:
        return True
    return entry.get("head") is not None and _head_hash(f, offset) != entry["head"]
