"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, one behaviour per path.

``HostileServer({"/slow": trickle(body, every=1.0), "/hang": hang(), ...})``: each behaviour is a
function of the request handler that writes whatever it likes to the socket, so the server can do
what :class:`tests.servers.LocalServer` (always a whole, well-formed response) cannot: trickle a
body byte by byte, never answer, stream 50 MB without a length, redirect forever.
Requests are counted per path in ``server.hits``; ``server.stop`` ends every slow behaviour.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Behaviour = Callable[[BaseHTTPRequestHandler, threading.Event], None]


def respond(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    def run(h: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return run


def dynamic(make: Callable[[], Behaviour]) -> Behaviour:
    """A behaviour chosen at each request (a feed that grows, a server that recovers)."""
    return lambda h, stop: make()(h, stop)


def trickle(body: bytes, every: float = 1.0, content_type: str = "application/rss+xml") -> Behaviour:
    """Headers at once, then the body one byte every ``every`` seconds (each read is quick, the whole is not)."""
    def run(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        for i in range(len(body)):
            if stop.wait(every):
                return
            h.wfile.write(body[i:i + 1])
            h.wfile.flush()
    return run


def hang() -> Behaviour:
    """Read the request, never answer."""
    return lambda h, stop: stop.wait()


def flood(total: int, chunk: int = 1 << 16) -> Behaviour:
    """``total`` bytes of feed-looking data, chunked (no Content-Length to refuse it by)."""
    def run(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        block = (b"<rss><channel>" + b"x" * chunk)[:chunk]
        sent = 0
        while sent < total and not stop.is_set():
            h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
        h.wfile.write(b"0\r\n\r\n")
    return run


def redirect(to: str, status: int = 302) -> Behaviour:
    return respond(status, b"", {"Location": to})


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that hung up (the fetcher cut a trickle, a daemon was killed) is expected here."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class HostileServer:
    def __init__(self, routes: dict[str, Behaviour], port: int = 0):
        self.routes = dict(routes)
        self.hits: Counter[str] = Counter()
        self.stop_event = threading.Event()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                server.hits[path] += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                behaviour = server.routes.get(path, respond(404, b"no such path"))
                try:
                    behaviour(self, server.stop_event)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: that is the point of most behaviours

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "HostileServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __exit__(self, *exc) -> None:
        self.stop()
