"""A small shared HTTP fetch layer for sources (sync httpx).

One :class:`HttpFetcher` per source keeps a connection pool and does
conditional GETs (``If-None-Match`` / ``If-Modified-Since``), follows
redirects, accepts gzip and streams the body with a size limit. httpx
exceptions are translated here, at the edge, into
:class:`monitor.errors.FetchError` naming the source; the original exception is
kept as ``__cause__``. Header values (cookies, tokens) never appear in error
messages, and secrets in the URL (user info, ``?key=...``) are masked.
"""

from __future__ import annotations

import http
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import Field, field_validator

from monitor.configtypes import PositiveDuration
from monitor.errors import FetchError
from sources.base import SourceConfig

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "yuqing-sentinel/0.1 (+monitoring)"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_SECRET_QUERY_KEYS = ("key", "token", "secret", "password", "passwd", "sign", "auth", "code")


class HttpSourceConfig(SourceConfig):
    """Settings of any source that polls one URL over HTTP(S)."""

    url: str
    timeout: PositiveDuration = Field(default="10s", validate_default=True)
    user_agent: str = DEFAULT_USER_AGENT
    # May carry cookies or API keys: kept out of repr() and error messages.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    proxy: str | None = Field(default=None, repr=False)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value


@dataclass(frozen=True)
class HttpResponse:
    """The outcome of one GET: a body, or ``not_modified`` for a 304."""

    url: str  # final URL after redirects
    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None  # full header value, e.g. "text/xml; charset=gbk"
    not_modified: bool = False

    @property
    def media_type(self) -> str | None:
        if not self.content_type:
            return None
        return _parse_content_type(self.content_type).get_content_type()

    @property
    def charset(self) -> str | None:
        if not self.content_type:
            return None
        return _parse_content_type(self.content_type).get_content_charset()


def _parse_content_type(value: str) -> Message:
    msg = Message()
    msg["content-type"] = value
    return msg


def safe_url(url: str) -> str:
    """``url`` with a password in the user info and secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [
            (k, "***" if any(s in k.lower() for s in _SECRET_QUERY_KEYS) else v) for k, v in pairs
        ]
        if masked != pairs:
            query = urlencode(masked, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def _is_refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ConnectionRefusedError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return "refused" in str(exc).lower()


class HttpFetcher:
    """Conditional, size-limited GETs for one source."""

    def __init__(
        self,
        source_name: str,
        *,
        timeout: float | timedelta = 10.0,
        user_agent: str = DEFAULT_USER_AGENT,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: httpx.BaseTransport | None = None,
    ):
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.source_name = source_name
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        base_headers = {"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"}
        base_headers.update(headers or {})
        self._client = httpx.Client(
            headers=base_headers,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=True,
            proxy=proxy,
            transport=transport,
        )

    @classmethod
    def from_config(cls, config: HttpSourceConfig, **kwargs) -> "HttpFetcher":
        return cls(
            config.name,
            timeout=config.timeout,
            user_agent=config.user_agent,
            headers=config.headers,
            proxy=config.proxy,
            max_bytes=config.max_bytes,
            **kwargs,
        )

    def _error(self, reason: str, status: int | None = None) -> FetchError:
        return FetchError(self.source_name, reason, status=status)

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """GET ``url``; raise :class:`FetchError` on any network or HTTP failure."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        shown = safe_url(url)
        started = time.monotonic()
        try:
            with self._client.stream("GET", url, headers=request_headers) as resp:
                return self._read(resp, shown)
        except FetchError:
            raise
        except httpx.TimeoutException as exc:
            raise self._error(f"timed out after {_format_seconds(self.timeout)}") from exc
        except httpx.ConnectError as exc:
            if _is_refused(exc):
                raise self._error(f"connection refused: {shown}") from exc
            raise self._error(f"cannot connect to {shown}: {exc}") from exc
        except httpx.TooManyRedirects as exc:
            raise self._error(f"too many redirects: {shown}") from exc
        except httpx.DecodingError as exc:
            raise self._error(f"cannot decode response body: {exc}") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._error(f"invalid URL {shown}: {exc}") from exc
        except httpx.ProxyError as exc:
            raise self._error(f"proxy error: {exc}") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            elapsed = time.monotonic() - started
            raise self._error(f"connection broken after {elapsed:.1f}s: {exc}") from exc
        except httpx.HTTPError as exc:
            raise self._error(f"{type(exc).__name__}: {exc}") from exc

    def _read(self, resp: httpx.Response, shown: str) -> HttpResponse:
        final_url = str(resp.url)
        if resp.status_code == 304:
            return HttpResponse(
                url=final_url,
                status=304,
                etag=resp.headers.get("etag"),
                last_modified=resp.headers.get("last-modified"),
                not_modified=True,
            )
        if not 200 <= resp.status_code < 300:
            raise self._error(_status_reason(resp), status=resp.status_code)

        declared = resp.headers.get("content-length")
        # Content-Length counts encoded (e.g. gzip) bytes; a compressed body
        # over the limit would only get bigger once decoded.
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._error(
                f"response too large: Content-Length {declared} exceeds max_bytes {self.max_bytes}"
            )
        chunks: list[bytes] = []
        total = 0
        for chunk in resp.iter_bytes():  # decoded bytes: also catches gzip bombs
            total += len(chunk)
            if total > self.max_bytes:
                raise self._error(
                    f"response too large: body exceeds max_bytes {self.max_bytes} from {shown}"
                )
            chunks.append(chunk)
        return HttpResponse(
            url=final_url,
            status=resp.status_code,
            body=b"".join(chunks),
            etag=resp.headers.get("etag"),
            last_modified=resp.headers.get("last-modified"),
            content_type=resp.headers.get("content-type"),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpFetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _status_reason(resp: httpx.Response) -> str:
    phrase = resp.reason_phrase
    if not phrase:
        try:
            phrase = http.HTTPStatus(resp.status_code).phrase
        except ValueError:
            phrase = ""
    return f"HTTP {resp.status_code} {phrase}".rstrip()
