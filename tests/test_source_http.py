"""HTTP etiquette against real servers on 127.0.0.1: retries with backoff, Retry-After,
slow-down on 429/418/403, per-host concurrency, proxy."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.core.errors import FetchError
from monitor.core.errors import Deferred
from sources.http import HttpFetcher
from sources.rss import RssSource, RssSourceConfig
from sources.base import SourceState
from tests.servers import LocalServer, Request, Response
from tests.source_helpers import RSS_TYPE, feed_bytes, make_pipeline
from monitor.storage.models import SourceStateRow

ROOT = Path(__file__).resolve().parents[1]


def fetcher(**kw) -> tuple[HttpFetcher, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 1.0)
    return HttpFetcher("src", sleep=sleeps.append, **kw), sleeps


def sequence(*responses: Response):
    queue = list(responses)
    return lambda req: queue.pop(0) if len(queue) > 1 else queue[0]


def test_5xx_and_broken_connections_are_retried_with_growing_jittered_backoff():
    with LocalServer(sequence(Response(503), Response(502), Response(200, b"ok"))) as server:
        f, sleeps = fetcher()
        assert f.get(server.url).body == b"ok"
    assert len(server.requests) == 3
    assert 0.5 <= sleeps[0] <= 1.5 and 1.0 <= sleeps[1] <= 3.0  # backoff × 2ⁿ × 0.5–1.5


def test_gives_up_after_the_retries_and_does_not_retry_client_errors_or_timeouts():
    with LocalServer(lambda req: Response(500)) as server:
        f, sleeps = fetcher(retries=2)
        with pytest.raises(FetchError, match="HTTP 500"):
            f.get(server.url)
    assert len(server.requests) == 3 and len(sleeps) == 2
    with LocalServer(lambda req: Response(404)) as server:
        f, sleeps = fetcher()
        with pytest.raises(FetchError, match="HTTP 404"):
            f.get(server.url)
    assert len(server.requests) == 1 and sleeps == []
    with LocalServer(lambda req: Response(200, b"late", delay=1.0)) as server:
        f, sleeps = fetcher(timeout=0.3)
        with pytest.raises(FetchError, match="timed out after 0.3s"):
            f.get(server.url)
    assert sleeps == []


def test_short_retry_after_is_waited_for():
    with LocalServer(sequence(Response(503, headers={"Retry-After": "7"}), Response(200, b"ok"))) as server:
        f, sleeps = fetcher(max_retry_wait=30)
        assert f.get(server.url).body == b"ok"
    assert sleeps == [7.0]


def test_long_retry_after_defers_the_source_until_then():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(minutes=10), usegmt=True)
    with LocalServer(lambda req: Response(503, headers={"Retry-After": when})) as server:
        f, sleeps = fetcher(max_retry_wait=30)
        with pytest.raises(FetchError) as info:
            f.get(server.url)
        assert "Retry-After" in info.value.reason and sleeps == []
        with pytest.raises(Deferred, match="server asked to retry after"):
            f.get(server.url)
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [429, 418, 403])
def test_slow_down_statuses_defer_the_next_polls_with_a_growing_delay(status):
    with LocalServer(lambda req: Response(status)) as server:
        f, sleeps = fetcher(slow_down_base=60, max_slow_down=3600)
        with pytest.raises(FetchError) as first:
            f.get(server.url)
        assert first.value.reason.endswith("slowing down: next request in 1m") and first.value.status == status
        with pytest.raises(Deferred) as deferred:
            f.get(server.url)
        assert f"slowing down after HTTP {status}" in deferred.value.reason
        assert len(server.requests) == 1 and sleeps == []  # no request while slowing down
        f._not_before = 0  # the window has passed
        with pytest.raises(FetchError) as second:
            f.get(server.url)
        assert second.value.reason.endswith("next request in 2m")


def test_a_success_resets_the_slow_down():
    with LocalServer(sequence(Response(429), Response(200, b"ok"), Response(429))) as server:
        f, _ = fetcher(slow_down_base=60)
        with pytest.raises(FetchError):
            f.get(server.url)
        f._not_before = 0
        f.get(server.url)
        with pytest.raises(FetchError) as again:
            f.get(server.url)
    assert again.value.reason.endswith("next request in 1m")


def test_deferred_poll_is_neither_a_failure_nor_a_success(db):
    with LocalServer(lambda req: Response(429, headers={"Retry-After": "120"})) as server:
        pipeline = make_pipeline(db, [{"name": "微博", "type": "rss", "url": server.url, "retries": 0}])
        first = pipeline.poll("微博")
        second = pipeline.poll("微博")
    assert first.error.startswith("HTTP 429 Too Many Requests; slowing down: next request in 2m")
    assert second.error is None and second.deferred.startswith("slowing down after HTTP 429")
    assert len(server.requests) == 1
    with db.session() as s:
        state = s.get(SourceStateRow, "微博")
        assert state.consecutive_failures == 1 and state.last_success_at is None


def _peak_concurrency(fetchers: int, max_per_host: int, setup=lambda url, host: None) -> tuple[int, int]:
    """Requests served and the most served at once, when ``fetchers`` sources GET one slow host together."""
    active, peak, lock = [0], [0], threading.Lock()

    def slow(req: Request) -> Response:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return Response(200, b"ok")

    with LocalServer(slow) as server:
        setup(server.url, server.url.split("//")[1])
        clients = [HttpFetcher(f"s{i}", max_per_host=max_per_host) for i in range(fetchers)]
        threads = [threading.Thread(target=f.get, args=(server.url + f"/{i}",)) for i, f in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return len(server.requests), peak[0]


def test_per_host_concurrency_limit_is_shared_by_every_source():
    assert _peak_concurrency(3, max_per_host=1) == (3, 1)


def test_requests_go_through_the_configured_proxy_with_the_configured_user_agent():
    body = feed_bytes("atom_sample.xml")
    with LocalServer(lambda req: Response(200, body, {"Content-Type": RSS_TYPE})) as proxy:
        cfg = RssSourceConfig(name="p", type="rss", url="http://feeds.example.invalid/atom.xml", proxy=proxy.url,
                              user_agent="yuqing-sentinel/0.1 (+ops@example.com)")
        result = RssSource(cfg).fetch(SourceState())
    assert len(result.items) == 2
    [req] = proxy.requests
    assert req.path == "http://feeds.example.invalid/atom.xml"  # absolute-form: a proxy request
    assert req.headers["user-agent"] == "yuqing-sentinel/0.1 (+ops@example.com)"
    assert proxy.url not in repr(cfg)  # the proxy may carry credentials


# --- deadlines, cancellation, host limits (issue 10) ------------------------------------------------

def test_a_trickling_body_is_cut_at_the_deadline():
    from tests.faults.hostile import HostileServer, trickle

    with HostileServer({"/feed": trickle(b"x" * 1000, every=0.1)}) as server:
        f, _ = fetcher(timeout=0.5, deadline=1.0)  # every read is quick: only the deadline ends it
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            f.get(server.url + "/feed")
        elapsed = time.monotonic() - started
    assert info.value.reason == "timed out after 1s reading the body"
    assert 0.9 < elapsed < 1.5


def test_the_deadline_ends_a_request_blocked_waiting_for_headers():
    from tests.faults.hostile import HostileServer, hang

    with HostileServer({"/hang": hang()}) as server:
        f, _ = fetcher(timeout=30, deadline=0.5)  # a read timeout would take 30 s
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            f.get(server.url + "/hang")
        elapsed = time.monotonic() - started
    assert info.value.reason == "timed out after 0.5s waiting for the response"
    assert elapsed < 1.0


def test_deadline_defaults_to_three_timeouts_and_is_a_source_setting():
    assert HttpFetcher("s", timeout=10).deadline == 30
    cfg = RssSourceConfig(name="r", type="rss", url="http://x.invalid/", timeout="5s", deadline="12s")
    assert HttpFetcher.from_config(cfg).deadline == 12


@pytest.mark.parametrize("path", ["/hang", "/trickle"])
def test_a_cancel_breaks_a_blocked_request_at_once(path):
    from monitor.core import cancel
    from monitor.core.errors import Cancelled
    from tests.faults.hostile import HostileServer, hang, trickle

    token = cancel.CancelToken()
    with HostileServer({"/hang": hang(), "/trickle": trickle(b"x" * 100, every=5)}) as server:
        f, _ = fetcher(timeout=30, deadline=60)
        threading.Timer(0.3, token.cancel).start()
        started = time.monotonic()
        with cancel.scope(token), pytest.raises(Cancelled):
            f.get(server.url + path)
        elapsed = time.monotonic() - started
        with cancel.scope(token), pytest.raises(Cancelled):  # a cancelled job sends nothing more
            f.get(server.url + path)
    assert elapsed < 0.8
    assert server.hits[path] == 1


def test_retry_backoff_sleeps_end_on_cancel():
    from monitor.core import cancel
    from monitor.core.errors import Cancelled

    token = cancel.CancelToken()
    with LocalServer(lambda req: Response(503)) as server:
        f = HttpFetcher("s", retries=3, backoff=20)  # the real, cancellable sleep
        threading.Timer(0.3, token.cancel).start()
        started = time.monotonic()
        with cancel.scope(token), pytest.raises(Cancelled):
            f.get(server.url)
    assert time.monotonic() - started < 1.0 and len(server.requests) == 1


def test_host_limit_is_the_hosts_setting_else_the_smallest_a_source_asks_for_and_is_reconfigurable():
    from sources.httpguard import HOST_LIMITS, configure_hosts

    def peak_with(limit_setup) -> int:
        return _peak_concurrency(4, max_per_host=4, setup=limit_setup)[1]

    def sources(url, *limits):
        return [RssSourceConfig(name=f"r{i}", type="rss", url=url + f"/{i}", max_per_host=n)
                for i, n in enumerate(limits)]

    try:
        # The smallest any source of the host asks for (not the first one's).
        assert peak_with(lambda url, host: configure_hosts(sources(url, 3, 1), {})) == 1
        # The host's own setting wins, by host:port or host alone; a reload replaces the limits.
        assert peak_with(lambda url, host: configure_hosts(sources(url, 1), {host: 2})) == 2
        assert peak_with(lambda url, host: configure_hosts(sources(url, 4), {"127.0.0.1": 1})) == 1
        assert configure_hosts(sources("http://weibo.cn", 3, 2), {"m.weibo.cn": 1}) == {"weibo.cn": 2, "m.weibo.cn": 1}
    finally:
        HOST_LIMITS.configure({}, {})


def test_a_connection_made_while_a_request_is_being_aborted_is_aborted_too():
    import httpcore

    from sources.httpguard import AbortableBackend
    from tests.faults.hostile import HostileServer, hang

    backend = AbortableBackend()
    with HostileServer({"/hang": hang()}) as server:
        host, port = server.url.split("//")[1].split(":")
        backend.abort()  # a cancel arrives while the connection is still being made …
        stream = backend.connect_tcp(host, int(port), timeout=5)
        started = time.monotonic()
        assert stream.read(10, timeout=5) == b""  # … so it is shut down as soon as it exists
        assert time.monotonic() - started < 1
        stream.close()
        backend.rearm()  # the next request connects normally
        stream = backend.connect_tcp(host, int(port), timeout=5)
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=0.2)
        stream.close()


# --- TLS: one context for every source (issue 11) ----------------------------------------------------

@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def https_server(handler, tls_cert) -> tuple[LocalServer, str]:
    """A LocalServer speaking HTTPS with ``tls_cert``, and its https:// URL."""
    server = LocalServer(handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_cert)
    httpd = server._httpd  # the test server has no TLS option: its listening socket is wrapped here
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    return server, server.url.replace("http://", "https://")


def test_a_certificate_no_trusted_authority_signed_is_refused(tls_cert):
    server, url = https_server(lambda req: Response(200, b"secret"), tls_cert)
    with server:
        with pytest.raises(FetchError) as info:
            fetcher(retries=0)[0].get(url + "/feed")
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.reason
    assert server.requests == []


SOURCES_OVER_TLS = """
import json, ssl, sys
made = []
real = ssl.create_default_context
def counting(*args, **kwargs):
    made.append(1)
    return real(*args, **kwargs)
ssl.create_default_context = counting  # counts the contexts httpx builds; builds them as before
from sources.http import HttpFetcher
fetchers = [HttpFetcher(f"s{i}", user_agent=f"ua-{i}", headers={"X-Source": str(i)}, timeout=5 + i)
            for i in range(20)]
bodies = [f.get(sys.argv[1] + f"/feed/{i}").body.decode() for i, f in enumerate(fetchers)]
print(json.dumps({"contexts": len(made), "bodies": bodies}))
"""


def test_twenty_sources_share_one_tls_context_that_trusts_ssl_cert_file(tls_cert):
    """In a fresh process (the context is built once per process): SSL_CERT_FILE is honoured, every
    source keeps its own headers and user agent, and only one context is built for all of them."""
    server, url = https_server(lambda req: Response(200, req.path.encode()), tls_cert)
    env = {**os.environ, "SSL_CERT_FILE": str(tls_cert[0]), "PYTHONPATH": str(ROOT)}
    env.pop("SSL_CERT_DIR", None)
    with server:
        run = subprocess.run([sys.executable, "-c", SOURCES_OVER_TLS, url], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["bodies"] == [f"/feed/{i}" for i in range(20)]
    assert result["contexts"] == 1
    assert sorted((r.headers["user-agent"], r.headers["x-source"]) for r in server.requests) == \
        sorted((f"ua-{i}", str(i)) for i in range(20))
