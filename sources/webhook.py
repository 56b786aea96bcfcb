"""Push intake: other systems POST items to the daemon's HTTP listener.

::

    - name: 客服系统推送
      type: webhook
      path: /ingest/kefu               # on the daemon's listener (http.bind, default 127.0.0.1:8787)
      token: ${KEFU_PUSH_TOKEN}        # "Authorization: Bearer <token>" or "X-Yuqing-Token: <token>"
      hmac_secret: ${KEFU_PUSH_SECRET} # or "X-Yuqing-Signature: sha256=<hex HMAC-SHA256(secret, body)>"
      fields: {id: ticket_id, text: content, author: customer, published_at: created_at}

The body is one JSON object, a list of objects, or ``{"items": [...]}`` (or
whatever list ``items`` — a JMESPath — selects). With ``X-Yuqing-Timestamp``
the signature covers ``"<timestamp>.<body>"`` and the timestamp must be within
``max_skew`` of now (the format the webhook *channel* sends, so one sentinel can
feed another). Requests without a valid token or signature get 401 and change
nothing.

Durability: the items go through the whole pipeline (normalise → dedup → score
→ store → rules) inside the request and the answer (200 with counts) is sent
only after they are committed; when storing fails the sender gets 503 and should
retry — inserts are idempotent on (source, id), so a retry never duplicates.
A body that is not JSON gets 400 and is recorded as a failure of the source.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any, Callable, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator

from monitor.core.configtypes import Duration
from monitor.core.errors import MonitorError, ParseError
from monitor.core.http import Request, Response
from sources.base import FetchResult, Source, SourceConfig, SourceState
from sources.mapping import FieldMap, RecordMapper, compile_expression, load_json

log = logging.getLogger(__name__)

MAX_ITEMS = 1000  # per request


class WebhookSourceConfig(SourceConfig):
    type: Literal["webhook"]
    path: str | None = None  # default /ingest/<url-quoted name>
    token: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    max_skew: Duration = Field(default="5m", validate_default=True)
    items: str | None = None  # JMESPath to the list of records; default: list, {"items": [...]} or one object
    fields: FieldMap = FieldMap()
    time_formats: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _checks(self) -> "WebhookSourceConfig":
        if self.token is None and self.hmac_secret is None:
            raise ValueError("a webhook source needs 'token' or 'hmac_secret' (unauthenticated pushes are refused)")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        if self.items is not None:
            compile_expression(self.items)
        return self

    @property
    def route(self) -> str:
        return self.path or "/ingest/" + quote(self.name, safe="")


Ingest = Callable[[FetchResult], Any]  # runs the pipeline; returns a report with .stored / .skipped
Failed = Callable[[str], Any]  # records a failure of the source


class WebhookSource(Source):
    config_model = WebhookSourceConfig
    config: WebhookSourceConfig
    push = True

    def __init__(self, config: WebhookSourceConfig):
        super().__init__(config)
        self._mapper = RecordMapper(config.fields, time_formats=config.time_formats, platform=config.platform)
        self._items = compile_expression(config.items) if config.items else None

    def fetch(self, state: SourceState) -> FetchResult:
        """Nothing to poll: items arrive through :meth:`handler`."""
        return FetchResult(items=[], state=state, not_modified=True)

    # -- authentication ----------------------------------------------------------
    def authenticate(self, request: Request, now: float | None = None) -> str | None:
        """None when the request carries a valid token or signature, else the reason (for the log)."""
        c = self.config
        if c.token is not None:
            expected = c.token.get_secret_value()
            auth = request.headers.get("authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-yuqing-token", "")
            if given and hmac.compare_digest(given.encode(), expected.encode()):
                return None
        if c.hmac_secret is not None:
            signature = request.headers.get("x-yuqing-signature") or request.headers.get("x-hub-signature-256") or ""
            stamp = request.headers.get("x-yuqing-timestamp")
            signed = request.body if stamp is None else stamp.encode() + b"." + request.body
            digest = hmac.new(c.hmac_secret.get_secret_value().encode(), signed, hashlib.sha256).hexdigest()
            if signature and hmac.compare_digest(signature.strip().lower(), f"sha256={digest}"):
                if stamp is None:
                    return None
                now = time.time() if now is None else now
                try:
                    skew = abs(now - float(stamp))
                except ValueError:
                    return "unreadable X-Yuqing-Timestamp"
                if skew <= c.max_skew.total_seconds():
                    return None
                return f"timestamp {skew:.0f}s off (max_skew {c.max_skew.total_seconds():g}s)"
            if signature:
                return "bad signature"
        return "no valid token or signature"

    # -- parsing -----------------------------------------------------------------
    def parse(self, body: bytes, declared_charset: str | None = None) -> tuple[list, list[str]]:
        """(items, skip reasons) of a pushed body; :class:`ParseError` when it is no usable JSON."""
        doc = load_json(self.name, body, declared_charset)
        if self._items is not None:
            records = self._items.search(doc)
        elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
            records = doc["items"]
        elif isinstance(doc, dict):
            records = [doc]
        else:
            records = doc
        if not isinstance(records, list):
            raise ParseError(self.name, f"expected a JSON object or a list of them, got {type(records).__name__}")
        if len(records) > MAX_ITEMS:
            raise ParseError(self.name, f"too many items in one request: {len(records)} (max {MAX_ITEMS})")
        items, skipped = [], []
        for index, record in enumerate(records):
            try:
                items.append(self._mapper.to_item(record))
            except ValueError as exc:
                skipped.append(f"item {index}: {exc}")
        return items, skipped

    # -- the route ---------------------------------------------------------------
    def handler(self, ingest: Ingest, failed: Failed) -> Callable[[Request], Response]:
        """The HTTP handler for this source's route, feeding ``ingest`` (the pipeline)."""

        def handle(request: Request) -> Response:
            problem = self.authenticate(request)
            if problem is not None:
                log.warning("[source=%s stage=push] refused a request from %s: %s", self.name, request.client, problem)
                return Response.json({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
            content_type = request.headers.get("content-type", "")
            declared = content_type.partition("charset=")[2].strip() or None
            try:
                items, skipped = self.parse(request.body, declared)
            except ParseError as exc:
                failed(f"rejected push: {exc.reason}")
                return Response.json({"error": exc.reason}, 400)
            try:
                report = ingest(FetchResult(items=items, state=SourceState(), skipped=skipped))
            except MonitorError as exc:
                log.error("[source=%s stage=push] %d items NOT stored: %s", self.name, len(items), exc)
                return Response.json({"error": "not stored, please retry"}, 503, {"Retry-After": "10"})
            return Response.json({"received": len(items) + len(skipped), "stored": report.stored,
                                  "duplicates": len(items) - report.stored - _skipped_later(report, skipped),
                                  "skipped": list(report.skipped)})

        return handle


def _skipped_later(report: Any, skipped_at_parse: list[str]) -> int:
    """Items dropped by normalisation (after parsing) — not duplicates."""
    return max(0, len(report.skipped) - len(skipped_at_parse))
