"""The daemon's HTTP listener: uvicorn serving an ASGI app in a thread, with the daemon's own routes.

Bound to ``127.0.0.1:8787`` by default (config ``http: {bind: "127.0.0.1:8787"}``; port 0 picks a
free one). The daemon's routes (webhook intake, ``/healthz``, ``/metrics``) are registered by exact
path and method as plain ``Request -> Response`` handlers (:mod:`monitor.core.http`)::

    server = HttpServer("127.0.0.1:8787", app_factory=console)  # console(server) -> ASGI app, or None
    server.add_route("POST", "/ingest/weibo", handler)   # handler(Request) -> Response
    server.start(); ...; server.stop()

Handlers run in a bounded thread pool (they write to the database) and may be added while serving
(a reload adds push paths). Without ``app_factory`` the server answers only its routes; with one
(the web console, :func:`monitor.web.app.create_app`) the factory's app serves everything and hands
the daemon's paths back to :meth:`HttpServer.__call__` (see :meth:`handles`).

Unknown paths get 404, a known path with another method 405 (with ``Allow``), bodies over
``max_body`` 413 without being read, a POST without ``Content-Length`` (nor chunked) 411. A handler
that raises gets a 500 and a logged traceback; the listener keeps serving. The listen backlog is
2048: a burst of pushes waits in the kernel's queue instead of being reset.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Callable
from urllib.parse import parse_qs

import anyio
import uvicorn

from monitor.core.errors import ConfigError
from monitor.core.http import DEFAULT_BIND, DEFAULT_MAX_BODY, Handler, Request, Response, parse_bind  # noqa: F401

log = logging.getLogger(__name__)
BACKLOG = 2048
HANDLER_THREADS = 16  # concurrent handler calls; more requests wait for a thread, none is refused
STARTUP_TIMEOUT = 10.0

ASGIApp = Callable[[dict, Callable, Callable], Any]


class HttpServer:
    def __init__(self, bind: str = DEFAULT_BIND, *, max_body: int = DEFAULT_MAX_BODY,
                 app_factory: Callable[["HttpServer"], ASGIApp] | None = None, threads: int = HANDLER_THREADS):
        self.bind = bind
        self.max_body = max_body
        self.app_factory = app_factory
        self.threads = threads
        self._routes: dict[str, dict[str, Handler]] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        methods = self._routes.setdefault(path, {})
        if method.upper() in methods:
            raise ValueError(f"route {method.upper()} {path} is already registered")
        methods[method.upper()] = handler

    @property
    def routes(self) -> list[tuple[str, str]]:
        return sorted((m, p) for p, methods in self._routes.items() for m in methods)

    def handles(self, path: str) -> bool:
        """True for the daemon's own paths (the console's app passes those requests back here)."""
        return path in self._routes

    @property
    def url(self) -> str:
        assert self._address is not None, "start() first"
        host, port = self._address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # -- serving ------------------------------------------------------------------------------
    def start(self) -> None:
        sock = _listen_socket(self.bind)
        self._address = sock.getsockname()[:2]
        app = self.app_factory(self) if self.app_factory is not None else self
        config = uvicorn.Config(app, lifespan="off", backlog=BACKLOG, log_level="warning", access_log=False,
                                server_header=False, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="monitor-httpd", daemon=True)
        self._thread.start()
        self._wait_started()
        log.info("[stage=http] listening on %s (%s%s)", self.url,
                 ", ".join(f"{m} {p}" for m, p in self.routes) or "no daemon routes",
                 "; web console" if self.app_factory is not None else "")

    def _wait_started(self) -> None:
        deadline = threading.Event()
        for _ in range(int(STARTUP_TIMEOUT / 0.02)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not self._server.started:
            raise ConfigError(f"http.bind: the listener on {self.bind} did not start")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout`` seconds), then close."""
        if self._server is None:
            return
        self._server.config.timeout_graceful_shutdown = max(0.1, timeout)
        self._server.should_exit = True
        self._thread.join(timeout + 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2)
        self._server = None

    def dispatch(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        if methods is None:
            return Response.json({"error": "not found"}, 404)
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            return Response.json({"error": "method not allowed"}, 405, {"Allow": ", ".join(sorted(methods))})
        try:
            return handler(request)
        except Exception:  # noqa: BLE001 - one bad request must not stop the listener
            log.exception("[stage=http] %s %s failed", request.method, request.path)
            return Response.json({"error": "internal error"}, 500)

    # -- ASGI: the daemon's routes --------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if method in ("POST", "PUT", "PATCH") and length is None and not chunked:
            return await _send(send, Response.json({"error": "Content-Length required"}, 411), method, close=True)
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _send(send, Response.json({"error": f"body over {self.max_body} bytes"}, 413), method,
                               close=True)
        body = await read_body(receive, self.max_body)
        if body is None:
            return await _send(send, Response.json({"error": f"body over {self.max_body} bytes"}, 413), method,
                               close=True)
        client = scope.get("client") or ("", 0)
        request = Request(method, scope["path"], parse_qs(scope.get("query_string", b"").decode("latin-1")),
                          headers, body, client[0])
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        response = await anyio.to_thread.run_sync(self.dispatch, request, limiter=self._limiter)
        await _send(send, response, method)


def _listen_socket(bind: str) -> socket.socket:
    """Bind here (not in uvicorn's thread) so a bad ``http.bind`` is a ConfigError at start."""
    host, port = parse_bind(bind)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"http.bind: cannot listen on {bind}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


async def read_body(receive: Callable, limit: int) -> bytes | None:
    """An ASGI request's body; None when it is over ``limit`` bytes (reading stops there)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Callable, response: Response, method: str, *, close: bool = False) -> None:
    headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})
