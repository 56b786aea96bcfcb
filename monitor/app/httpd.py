"""The daemon's small HTTP listener (stdlib ``ThreadingHTTPServer``) with route registration.

Bound to ``127.0.0.1:8787`` by default (config ``http: {bind: "127.0.0.1:8787"}``;
port 0 picks a free one). Routes are registered by exact path and method::

    server = HttpServer("127.0.0.1:8787")
    server.add_route("POST", "/ingest/weibo", handler)   # handler(Request) -> Response
    server.start(); ...; server.stop()

Unknown paths get 404, a known path with another method 405 (with ``Allow``),
bodies over ``max_body`` 413 without being read, a body without
``Content-Length`` 411. A handler that raises gets a 500 and a logged traceback;
the listener keeps serving.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.core.errors import ConfigError
from monitor.core.http import DEFAULT_BIND, DEFAULT_MAX_BODY, Handler, Request, Response, parse_bind  # noqa: F401

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, bind: str = DEFAULT_BIND, *, max_body: int = DEFAULT_MAX_BODY):
        self.bind = bind
        self.max_body = max_body
        self._routes: dict[str, dict[str, Handler]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        methods = self._routes.setdefault(path, {})
        if method.upper() in methods:
            raise ValueError(f"route {method.upper()} {path} is already registered")
        methods[method.upper()] = handler

    @property
    def routes(self) -> list[tuple[str, str]]:
        return sorted((m, p) for p, methods in self._routes.items() for m in methods)

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        host, port = parse_bind(self.bind)
        try:
            self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        except OSError as exc:
            raise ConfigError(f"http.bind: cannot listen on {self.bind}: {exc.strerror or exc}") from exc
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="monitor-httpd", daemon=True)
        self._thread.start()
        log.info("[stage=http] listening on %s (%s)", self.url,
                 ", ".join(f"{m} {p}" for m, p in self.routes) or "no routes")

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def dispatch(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        if methods is None:
            return Response.json({"error": "not found"}, 404)
        handler = methods.get(request.method)
        if handler is None:
            return Response.json({"error": "method not allowed"}, 405, {"Allow": ", ".join(sorted(methods))})
        try:
            return handler(request)
        except Exception:  # noqa: BLE001 - one bad request must not stop the listener
            log.exception("[stage=http] %s %s failed", request.method, request.path)
            return Response.json({"error": "internal error"}, 500)


def _handler_class(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "yuqing-sentinel"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = self.headers.get("Content-Length")
            if self.command in ("POST", "PUT", "PATCH") and length is None:
                return self._send(Response.json({"error": "Content-Length required"}, 411), close=True)
            size = int(length) if length and length.isdigit() else 0
            if size > server.max_body:
                return self._send(Response.json({"error": f"body over {server.max_body} bytes"}, 413), close=True)
            body = self.rfile.read(size) if size else b""
            request = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[0])
            self._send(server.dispatch(request))

        def _send(self, resp: Response, close: bool = False) -> None:
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("[stage=http] %s " + format, self.client_address[0], *args)

    return _Handler
