"""What bounds one HTTP request of a source: the host's concurrency limit, a deadline, a cancel.

- :class:`HostLimits` — at most N requests at once to one host across every fetcher of the
  process. N is the host's own setting (``http.hosts.<host>.max_concurrent``), else the smallest
  ``max_per_host`` of the configured sources polling that host (both set by the daemon through
  :func:`configure_hosts`, at start and again on every reload), else — a host no source names, e.g.
  a next page elsewhere — the smallest any fetcher asked for.
- :class:`Guard` — a total deadline for one request (connect + headers + body) and the job's
  cancel token. httpx's timeouts are per read, so a body trickling one byte a second never times
  out; and a thread blocked in a socket read cannot be interrupted. Both are solved the same way:
  the fetcher's sockets are known to :class:`AbortableBackend` (an httpcore network backend), and
  at the deadline, or on cancel, another thread shuts them down, so the blocked read returns at
  once and the request fails.

httpcore is imported by the first backend, not with this module (loading a config imports the
sources, and needs no HTTP client): its stream and backend classes are matched by their methods.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol
from urllib.parse import urlsplit

from monitor.core.cancel import CancelToken

if TYPE_CHECKING:
    import httpcore
    import httpx


def host_of(url: str) -> str:
    """The host (and port, if any) a URL's requests count against; user info is not part of it."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


class SharedSlots(Protocol):
    """Slots to a host shared by every daemon of a cluster (kept in the database by the app layer)."""

    def take(self, host: str, limit: int, hold_for: float) -> Any | None:
        """A slot (released by :meth:`give_back`, or expiring after ``hold_for`` s); None if all are taken."""

    def give_back(self, slot: Any) -> None: ...


class HostLimits:
    def __init__(self) -> None:
        self._shared: SharedSlots | None = None
        self._held: dict[int, Any] = {}  # thread id -> its shared slot
        self._cv = threading.Condition()
        self._active: dict[str, int] = {}
        self._hosts: dict[str, int] = {}  # http.hosts: "weibo.cn" or "weibo.cn:8443"
        self._sources: dict[str, int] = {}  # smallest max_per_host of the sources of each host
        self._asked: dict[str, int] = {}  # other hosts: smallest limit a fetcher asked for

    def configure(self, hosts: Mapping[str, int], sources: Mapping[str, int]) -> None:
        """Replace the limits (a reload); requests running keep their slot, new ones see the new limit."""
        with self._cv:
            self._hosts = {h.lower(): n for h, n in hosts.items()}
            self._sources = dict(sources)
            self._asked = {}
            self._cv.notify_all()

    def share(self, shared: SharedSlots | None) -> None:
        """Count requests against slots shared with the other daemons of a cluster too (None: this process only)."""
        self._shared = shared

    def limit(self, host: str, asked: int) -> int:
        with self._cv:
            return self._limit(host, asked)

    def _limit(self, host: str, asked: int) -> int:
        for table, key in ((self._hosts, host), (self._hosts, host.rsplit(":", 1)[0]), (self._sources, host)):
            if key in table:
                return table[key]
        self._asked[host] = min(asked, self._asked.get(host, asked))
        return self._asked[host]

    def acquire(self, host: str, asked: int, timeout: float, token: CancelToken) -> bool:
        """Wait for a slot to ``host`` up to ``timeout`` seconds; False if none came. A cancel ends the wait."""
        until = time.monotonic() + timeout
        with self._cv:
            while self._active.get(host, 0) >= self._limit(host, asked):
                token.check()
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.2))  # short waits: a cancel is seen promptly
            self._active[host] = self._active.get(host, 0) + 1
            limit = self._limit(host, asked)
        shared = self._shared
        if shared is None:
            return True
        try:
            while True:  # the cluster's slots: another node's requests count too
                slot = shared.take(host, limit, timeout)
                if slot is not None:
                    self._held[threading.get_ident()] = slot
                    return True
                left = until - time.monotonic()
                if left <= 0:
                    self._release_local(host)
                    return False
                token.sleep(min(left, 0.2))  # a cancel ends the wait
        except BaseException:  # cancelled, or the database failed: the local slot goes back
            self._release_local(host)
            raise

    def release(self, host: str) -> None:
        slot = self._held.pop(threading.get_ident(), None)
        if slot is not None and self._shared is not None:
            try:
                self._shared.give_back(slot)
            except Exception:  # noqa: BLE001 - an unreturned slot expires by itself
                pass
        self._release_local(host)

    def _release_local(self, host: str) -> None:
        with self._cv:
            self._active[host] -= 1
            self._cv.notify_all()


HOST_LIMITS = HostLimits()


def configure_hosts(sources: Iterable[Any], hosts: Mapping[str, int]) -> dict[str, int]:
    """Set the process's per-host limits from the config: ``hosts`` wins, else the smallest any source asks."""
    smallest: dict[str, int] = {}
    for cfg in sources:
        url, asked = getattr(cfg, "url", None), getattr(cfg, "max_per_host", None)
        if url and asked:
            host = host_of(url)
            smallest[host] = min(asked, smallest.get(host, asked))
    HOST_LIMITS.configure(hosts, smallest)
    return {**smallest, **{h.lower(): n for h, n in hosts.items()}}


class _Stream:
    """A network stream (an ``httpcore.NetworkStream``) its backend can abort from another thread."""

    def __init__(self, inner: httpcore.NetworkStream, backend: "AbortableBackend"):
        self._inner, self._backend = inner, backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._backend._forget(self)
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        # The TLS stream owns the socket from now on: track it instead of this one.
        stream = _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend)
        self._backend._forget(self)
        return self._backend._track(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def abort(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is None:
            return
        try:  # the plain socket call: on a TLS socket this must not touch the TLS state another thread uses
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class AbortableBackend:
    """httpcore's synchronous backend (an ``httpcore.NetworkBackend``), remembering the open streams so
    that :meth:`abort` can end them."""

    def __init__(self) -> None:
        import httpcore

        self._inner = httpcore.SyncBackend()
        self._lock = threading.Lock()
        self._streams: set[_Stream] = set()
        self._aborted = False  # until rearm(): a stream connected after an abort is aborted at once

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> _Stream:
        return self._track(_Stream(self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                           socket_options=socket_options), self))

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        return self._track(_Stream(self._inner.connect_unix_socket(path, timeout=timeout,
                                                                   socket_options=socket_options), self))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def abort(self) -> None:
        """Shut down every open socket, and any opened until :meth:`rearm`: a blocked read returns at once."""
        with self._lock:
            self._aborted = True
            streams = list(self._streams)
        for stream in streams:
            stream.abort()

    def rearm(self) -> None:
        """A new request begins: connections may be made again."""
        with self._lock:
            self._aborted = False

    def _track(self, stream: _Stream) -> _Stream:
        with self._lock:
            self._streams.add(stream)
            aborted = self._aborted
        if aborted:  # the abort came while this connection was being made
            stream.abort()
        return stream

    def _forget(self, stream: _Stream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def install(self, client: httpx.Client) -> bool:
        """Use this backend for ``client``'s connections (direct and through a proxy); False if it cannot.

        httpx has no public hook for the network backend; its transports keep an httpcore pool in
        ``_pool``, whose ``_network_backend`` makes every connection. A transport without one (a test's
        MockTransport) is left alone: it has no socket to block on.
        """
        installed = False
        for transport in (client._transport, *client._mounts.values()):
            pool = getattr(transport, "_pool", None)
            if pool is not None and hasattr(pool, "_network_backend"):
                pool._network_backend = self
                installed = True
        return installed


class Guard:
    """One request's deadline and its job's cancel token, both ending a blocked request by aborting sockets.

    ``phase`` says what the request was doing (for the error message): connecting, waiting for the
    response, reading the body.
    """

    def __init__(self, backend: AbortableBackend, token: CancelToken, seconds: float):
        self.backend, self.token, self.seconds = backend, token, seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.phase = "waiting for the response"
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._hook = token.on_cancel(backend.abort)

    def __enter__(self) -> "Guard":
        self.backend.rearm()
        self._hook.__enter__()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._hook.__exit__(*exc)

    def _expire(self) -> None:
        self.expired = True
        self.backend.abort()

    def overdue(self) -> bool:
        return self.expired or time.monotonic() >= self.deadline
