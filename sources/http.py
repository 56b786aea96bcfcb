"""A small shared HTTP fetch layer for sources (sync httpx), polite by default.

One :class:`HttpFetcher` per source keeps a connection pool and does
conditional GETs (``If-None-Match`` / ``If-Modified-Since``), follows
redirects, accepts gzip and streams the body with a size limit (a 50 MB body
is refused by its ``Content-Length`` or while streaming, never loaded).

Etiquette:

- **retries** — connection failures and 500/502/503/504 are retried up to
  ``retries`` times with exponential backoff and jitter (``backoff`` × 2ⁿ ×
  0.5–1.5). Timeouts are not retried within a poll: the next run is the retry.
- **Retry-After** — honoured on 429/503 (seconds or an HTTP date): waited for
  when it is at most ``max_retry_wait``, otherwise the source defers until then.
- **slow down** — 429, 418 and 403 make the source wait before its next
  request, twice as long after each consecutive one (``interval`` × 2ⁿ, at most
  ``max_slow_down``); polls in that window raise :class:`sources.base.Deferred`
  without touching the network. A success resets it.
- **per-host concurrency** — at most N requests to one host at once across
  every source of the process: the host's ``http.hosts`` setting, else the
  smallest ``max_per_host`` of its sources (:mod:`sources.httpguard`).
- **deadline** — one request (connect + headers + body) ends at ``deadline``
  (3 × ``timeout`` unless set), whatever the server trickles; and a cancelled
  job (shutdown, reload) ends its request at once (:mod:`sources.httpguard`).
- ``user_agent``, ``headers`` (cookies), ``proxy`` — configurable per source.

httpx exceptions are translated here, at the edge, into
:class:`monitor.core.errors.FetchError` naming the source; the original exception is
kept as ``__cause__``. Header values (cookies, tokens) never appear in error
messages, and secrets in the URL (user info, ``?key=...``) are masked.

Every fetcher verifies TLS with one shared context (:func:`shared_ssl_context`): building one
loads the whole CA bundle, ~17 ms, which made 100 sources take 1.7 s to start. Connection pools
stay per fetcher — its deadline and cancel abort its pool's sockets (:mod:`sources.httpguard`),
which must never end another source's request. httpx itself is imported on the first fetcher, not
with this module: loading a config (``monitor incidents list``) needs the settings, not a client.
"""

from __future__ import annotations

import http
import logging
import random
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import cache
from typing import TYPE_CHECKING, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, field_validator

from monitor.core import cancel
from monitor.core.configtypes import Duration, PositiveDuration, format_duration
from monitor.core.errors import Cancelled, FetchError
from sources import charset
from monitor.core.errors import Deferred
from sources.base import SourceConfig
from sources.httpguard import HOST_LIMITS, AbortableBackend, Guard, host_of

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "yuqing-sentinel/0.1 (+monitoring)"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
RETRY_STATUSES = frozenset({500, 502, 503, 504})
SLOW_DOWN_STATUSES = frozenset({429, 418, 403})
_SECRET_QUERY_KEYS = ("key", "token", "secret", "password", "passwd", "sign", "auth", "code")


class HttpSourceConfig(SourceConfig):
    """Settings of any source that polls one URL over HTTP(S)."""

    url: str
    timeout: PositiveDuration = Field(default="10s", validate_default=True)  # per connect / read
    deadline: PositiveDuration | None = None  # whole request (connect + headers + body); None: 3 × timeout
    user_agent: str = DEFAULT_USER_AGENT
    # May carry cookies or API keys: kept out of repr() and error messages.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    proxy: str | None = Field(default=None, repr=False)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    backoff: Duration = Field(default="1s", validate_default=True)
    max_retry_wait: Duration = Field(default="30s", validate_default=True)
    max_slow_down: PositiveDuration = Field(default="1h", validate_default=True)
    max_per_host: int = Field(default=2, ge=1)

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
    def charset(self) -> str | None:
        if not self.content_type:
            return None
        return _parse_content_type(self.content_type).get_content_charset()

    def text(self) -> str:
        """The body decoded (declared charset if it fits, else detected; GBK/GB18030/Big5 aware)."""
        return charset.decode(self.body, self.charset)[0]


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


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context of every fetcher: certificates verified against the CA bundle httpx would pick
    (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else certifi's), loaded once per process. A context is only
    read once built, so clients and threads may share it; sources have no TLS setting of their own."""
    import httpx

    return httpx.create_ssl_context()


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
    """Conditional, size-limited, polite GETs for one source."""

    def __init__(
        self,
        source_name: str,
        *,
        timeout: float | timedelta = 10.0,
        deadline: float | timedelta | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retries: int = 0,
        backoff: float | timedelta = 1.0,
        max_retry_wait: float | timedelta = 30.0,
        slow_down_base: float | timedelta = 60.0,
        max_slow_down: float | timedelta = 3600.0,
        max_per_host: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,  # None: a sleep that a cancel ends
    ):
        import httpx

        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.source_name = source_name
        self.timeout = _seconds(timeout)
        self.deadline = _seconds(deadline) if deadline is not None else 3 * self.timeout
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff = _seconds(backoff)
        self.max_retry_wait = _seconds(max_retry_wait)
        self.slow_down_base = _seconds(slow_down_base)
        self.max_slow_down = _seconds(max_slow_down)
        self.max_per_host = max_per_host
        self._sleep = sleep
        self._slow_level = 0  # consecutive slow-down answers
        self._not_before = 0.0  # time.monotonic() before which no request is sent
        self._not_before_reason = ""
        base_headers = {"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"}
        base_headers.update(headers or {})
        self._client = httpx.Client(
            headers=base_headers,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=True,
            proxy=proxy,
            transport=transport,
            verify=shared_ssl_context(),
        )
        self._backend = AbortableBackend()  # so a deadline or a cancel can end a blocked read
        self._backend.install(self._client)

    @classmethod
    def from_config(cls, config: HttpSourceConfig, **kwargs) -> "HttpFetcher":
        return cls(
            config.name,
            timeout=config.timeout,
            deadline=config.deadline,
            user_agent=config.user_agent,
            headers=config.headers,
            proxy=config.proxy,
            max_bytes=config.max_bytes,
            retries=config.retries,
            backoff=config.backoff,
            max_retry_wait=config.max_retry_wait,
            slow_down_base=config.interval,
            max_slow_down=config.max_slow_down,
            max_per_host=config.max_per_host,
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
        params: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """GET ``url`` politely; raise :class:`FetchError` on failure, :class:`Deferred` while slowing down.

        A cancel of the running job (:func:`monitor.core.cancel.current`) raises :class:`Cancelled`.
        """
        token = cancel.current()
        token.check()
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise Deferred(self.source_name, f"{self._not_before_reason}; next request in {_human(wait)}")
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            try:
                resp = self._get_once(url, request_headers, params, token)
            except FetchError as exc:
                delay = self._after_failure(exc, attempt)
                if delay is None:
                    raise
                log.info("source %r: %s; retry %d/%d in %.1fs", self.source_name, exc.reason,
                         attempt + 1, self.retries, delay)
                (self._sleep or token.sleep)(delay)
                token.check()
                attempt += 1
                continue
            self._slow_level = 0
            return resp

    def _after_failure(self, exc: FetchError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None to give up (after updating slow-down state)."""
        retry_after: float | None = getattr(exc, "retry_after", None)
        if exc.status in SLOW_DOWN_STATUSES:
            self._slow_level += 1
            delay = min(self.slow_down_base * 2 ** (self._slow_level - 1), self.max_slow_down)
            delay = max(delay, retry_after or 0.0)
            self._defer(delay, f"slowing down after HTTP {exc.status}")
            _amend(exc, f"slowing down: next request in {_human(delay)}")
            return None
        if retry_after is not None and retry_after > self.max_retry_wait:
            self._defer(retry_after, f"server asked to retry after {_human(retry_after)}")
            _amend(exc, f"Retry-After {_human(retry_after)}: next request then")
            return None
        if attempt >= self.retries or not getattr(exc, "retryable", False):
            return None
        if retry_after is not None:
            return retry_after
        return self.backoff * 2 ** attempt * random.uniform(0.5, 1.5)

    def _defer(self, seconds: float, reason: str) -> None:
        self._not_before = time.monotonic() + seconds
        self._not_before_reason = reason

    # Politeness outlives this object: several daemons poll the same source in turn, so the
    # slow-down level and "no request before" are kept in the database between polls (wall clock).
    def politeness(self) -> dict | None:
        wait = self._not_before - time.monotonic()
        if self._slow_level == 0 and wait <= 0:
            return None
        return {"slow_level": self._slow_level, "not_before": time.time() + max(wait, 0.0),
                "reason": self._not_before_reason}

    def restore_politeness(self, data: dict | None) -> None:
        data = data or {}
        try:
            level, not_before = int(data.get("slow_level", 0)), float(data.get("not_before", 0.0))
        except (TypeError, ValueError):
            level, not_before = 0, 0.0  # an unreadable record costs one request, not the source
        self._slow_level = max(0, level)
        wait = min(not_before - time.time(), self.max_slow_down)
        self._not_before = time.monotonic() + wait if wait > 0 else 0.0
        self._not_before_reason = str(data.get("reason", "")) if wait > 0 else ""

    def _get_once(self, url: str, request_headers: dict[str, str], params: Mapping[str, str] | None,
                  token: cancel.CancelToken) -> HttpResponse:
        import httpx

        shown = safe_url(url)
        host = host_of(url)
        if not HOST_LIMITS.acquire(host, self.max_per_host, self.deadline, token):
            raise self._error(f"host busy: {HOST_LIMITS.limit(host, self.max_per_host)} requests to {host} "
                              f"already running")
        if params:  # merged into the URL's own query (httpx would replace it)
            url = str(httpx.URL(url).copy_merge_params(dict(params)))
        started = time.monotonic()
        try:
            with Guard(self._backend, token, self.deadline) as guard:
                try:
                    with self._client.stream("GET", url, headers=request_headers) as resp:
                        guard.phase = "reading the body"
                        return self._read(resp, shown, guard)
                except httpx.HTTPError as exc:
                    raise self._translate(exc, shown, time.monotonic() - started, guard) from exc
        finally:
            HOST_LIMITS.release(host)

    def _translate(self, exc: httpx.HTTPError, shown: str, elapsed: float, guard: Guard) -> BaseException:
        """The FetchError (or Cancelled) an httpx error means; aborted sockets are told apart by the guard."""
        import httpx

        if guard.token.cancelled:
            return Cancelled(f"source {self.source_name!r}: request cancelled")
        if guard.expired:
            return self._error(f"timed out after {_format_seconds(self.deadline)} {guard.phase}")
        if isinstance(exc, httpx.TimeoutException):  # one read (or the connect) took longer than timeout
            return self._error(f"timed out after {_format_seconds(self.timeout)}")
        if isinstance(exc, httpx.ConnectError):
            if _is_refused(exc):
                return _retryable(self._error(f"connection refused: {shown}"))
            return _retryable(self._error(f"cannot connect to {shown}: {exc}"))
        if isinstance(exc, httpx.TooManyRedirects):
            return self._error(f"too many redirects: {shown}")
        if isinstance(exc, httpx.DecodingError):
            return self._error(f"cannot decode response body: {exc}")
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return self._error(f"invalid URL {shown}: {exc}")
        if isinstance(exc, httpx.ProxyError):
            return self._error(f"proxy error: {exc}")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return _retryable(self._error(f"connection broken after {elapsed:.1f}s: {exc}"))
        return self._error(f"{type(exc).__name__}: {exc}")

    def _read(self, resp: httpx.Response, shown: str, guard: Guard) -> HttpResponse:
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
            exc = self._error(_status_reason(resp), status=resp.status_code)
            exc.retry_after = _retry_after(resp.headers.get("retry-after"))  # type: ignore[attr-defined]
            exc.retryable = resp.status_code in RETRY_STATUSES  # type: ignore[attr-defined]
            raise exc

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
            if guard.overdue():  # a trickling body: each read is quick, the whole is not
                raise self._error(f"timed out after {_format_seconds(self.deadline)} reading the body")
            guard.token.check()
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


def _amend(exc: FetchError, note: str) -> None:
    exc.reason = f"{exc.reason}; {note}"
    exc.args = (f"source {exc.source!r}: {exc.reason}",)


def _retryable(exc: FetchError) -> FetchError:
    exc.retryable = True  # type: ignore[attr-defined]
    return exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"
    return format_duration(timedelta(seconds=round(seconds)))
