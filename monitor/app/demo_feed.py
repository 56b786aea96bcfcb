"""A local RSS feed server that replays a scenario file in real time (``make demo``).

Each scenario line is a post with an ``offset`` in seconds relative to the
replay start (negative = history). The server answers an RSSHub-style path
(``/weibo/keyword/<keyword>``) with RSS 2.0 holding every item whose time
``start_time + offset`` has come, newest first. Guids carry a ``run_id`` so
repeated demo runs produce fresh ids. ETag / If-None-Match is supported.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

DEFAULT_KEYWORD = "鲜丰奶茶"
_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,), "offset": (int, float), "author": (str,), "text": (str,), "url": (str,), "followers": (int,),
}


@dataclass(frozen=True)
class ScenarioItem:
    id: str
    offset: float  # seconds relative to replay start; negative = history
    author: str
    text: str
    url: str
    followers: int


def _check_row(row: Any) -> ScenarioItem:
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in _FIELDS if k not in row]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    for key, types in _FIELDS.items():
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"field {key!r} must be {'/'.join(t.__name__ for t in types)}, got {value!r}")
    if not row["id"].strip() or not row["text"].strip():
        raise ValueError("'id' and 'text' must not be empty")
    if not row["url"].startswith(("http://", "https://")):
        raise ValueError(f"field 'url' must be an http(s) URL, got {row['url']!r}")
    if row["followers"] < 0:
        raise ValueError("field 'followers' must not be negative")
    return ScenarioItem(**{k: row[k] for k in _FIELDS})


def load_scenario(path: str | Path) -> list[ScenarioItem]:
    """Read and validate a scenario JSONL file; items come back sorted by offset.

    Blank lines are skipped. Any bad line raises ``ValueError("path:lineno: ...")``.
    """
    items: list[ScenarioItem] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = _check_row(json.loads(line))
                if item.id in seen:
                    raise ValueError(f"duplicate id {item.id!r}")
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
            seen.add(item.id)
            items.append(item)
    return sorted(items, key=lambda it: it.offset)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class DemoFeedServer:
    """Serve ``scenario_path`` as an RSS feed on ``host:port`` (port 0 = any free port)."""

    def __init__(
        self,
        scenario_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_time: datetime | None = None,
        run_id: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        max_items: int = 100,
        keyword: str = DEFAULT_KEYWORD,
    ) -> None:
        self.items = load_scenario(scenario_path)
        self.clock = clock
        self.start_time = start_time if start_time is not None else clock()
        if self.start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        self.run_id = run_id if run_id is not None else str(int(self.start_time.timestamp()))
        self.max_items = max_items
        self.keyword = keyword
        self.path = f"/weibo/keyword/{quote(keyword)}"
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def start(self) -> "DemoFeedServer":
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.1,), name="demo-feed", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "DemoFeedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def visible_items(self) -> list[ScenarioItem]:
        """Items whose time has come, newest first, at most ``max_items``."""
        elapsed = (self.clock() - self.start_time).total_seconds()
        due = [it for it in self.items if it.offset <= elapsed]
        return due[::-1][: self.max_items]

    def render(self) -> bytes:
        """The RSS 2.0 document for the current clock."""
        entries = []
        for it in self.visible_items():
            published = self.start_time + timedelta(seconds=it.offset)
            entries.append(
                "<item>"
                f"<title>{escape(it.text[:30].strip())}</title>"
                f"<description>{escape(it.text)}</description>"
                f"<link>{escape(it.url)}</link>"
                f'<guid isPermaLink="false">{escape(f"{self.run_id}-{it.id}")}</guid>'
                f"<author>{escape(it.author)}</author>"
                f"<pubDate>{format_datetime(published.astimezone(timezone.utc), usegmt=True)}</pubDate>"
                "</item>"
            )
        kw = escape(self.keyword)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>又有人在微博提到{kw}了 (demo replay)</title><link>https://s.weibo.com/weibo?q={quote(self.keyword)}</link>"
            f"<description>Replay of a recorded scenario for {kw}</description><ttl>1</ttl>"
            + "".join(entries)
            + "</channel></rss>\n"
        ).encode("utf-8")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                if path == "/healthz":
                    self._reply(200, b"ok\n", {"Content-Type": "text/plain; charset=utf-8"})
                elif path == unquote(feed.path):
                    body = feed.render()
                    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                    headers = {"ETag": etag, "Cache-Control": "no-cache"}
                    sent = {t.strip().removeprefix("W/") for t in self.headers.get("If-None-Match", "").split(",")}
                    if etag in sent or "*" in sent:
                        self._reply(304, b"", headers)
                    else:
                        self._reply(200, body, {"Content-Type": "application/rss+xml; charset=utf-8", **headers})
                else:
                    self._reply(404, b"not found\n", {"Content-Type": "text/plain; charset=utf-8"})

            def do_HEAD(self) -> None:
                self.do_GET()

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and status != 304:
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            def log_message(self, format: str, *args: Any) -> None:  # no per-request stderr spam
                pass

        return Handler
