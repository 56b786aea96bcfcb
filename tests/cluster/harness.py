"""What the cluster suite runs against: a feed server that remembers when each feed was fetched, a
webhook receiver that can hold or drop a page, and a set of named `monitor run` nodes sharing one
PostgreSQL schema (one config file per node, identical but for ``cluster.node_name``)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable

from sqlalchemy import text

from tests.faults.hostile import HostileServer, _QuietServer, respond
from tests.faults.proc import DaemonProcess, config_text

TOPIC = "鲜丰奶茶"
RULE = "{name: 塌房, type: keyword, terms: {塌房: II}}"
COMPLAINT = "鲜丰奶茶塌房了，喝出异物，大家别买"


def body(feeds: "FeedServer", interval: float, hook: "Receiver | None" = None, rules_interval: str = "1s") -> str:
    """The config every node of a test shares (but for ``cluster``): the feeds, the topic, the 塌房 rule
    and, with ``hook``, the webhook channel."""
    channel = f"channels:\n  - {{name: hook, type: webhook, url: '{hook.url}/hook'}}\n" if hook else ""
    return f"""
{feeds.http()}
scheduler: {{rules_interval: {rules_interval}}}
sources:
{feeds.sources(f"{interval:g}s")}
topics:
  - {{name: {TOPIC}, keywords: [鲜丰]}}
rules:
  - {RULE}
{channel}"""


def wait_until(cond: Callable[[], object], timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(every)
    return got


class FeedServer:
    """``count`` RSS feeds at /feed/<i>, each with ``items`` items about the topic to begin with.

    ``add(i, text)`` publishes one more item; every request's arrival (monotonic seconds) is kept
    per feed in ``hits``; ``delay`` seconds pass before each answer (polls in flight at a kill)."""

    def __init__(self, count: int, items: int = 3, delay: float = 0.0):
        self.count, self.delay = count, delay
        self.items: dict[int, list[tuple[str, str]]] = {
            i: [(f"{i}-{k}", f"{TOPIC}新品第{k}款，很好喝 {i}-{k}") for k in range(items)] for i in range(count)}
        self.hits: dict[int, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                at = time.monotonic()
                head, _, tail = self.path.partition("/feed/")
                if head or not tail.isdigit() or int(tail) >= server.count:
                    self.send_error(404)
                    return
                i = int(tail)
                with server._lock:
                    server.hits[i].append(at)
                    items = list(server.items[i])
                if server.delay:
                    time.sleep(server.delay)
                body = "".join(f"<item><guid>{g}</guid><title>{t}</title><description>{t}</description></item>"
                               for g, t in reversed(items))
                data = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f{i}</title>'
                        f"{body}</channel></rss>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the node was killed mid-poll

            def log_message(self, *args) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)  # a killed node resets its connections
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, i: int, text_: str) -> str:
        with self._lock:
            guid = f"{i}-{len(self.items[i])}"
            self.items[i].append((guid, text_))
        return guid

    def published(self) -> set[tuple[str, str]]:
        """(source name, guid) of every item published so far."""
        with self._lock:
            return {(f"s{i}", g) for i, items in self.items.items() for g, _ in items}

    def times(self, i: int) -> list[float]:
        with self._lock:
            return list(self.hits[i])

    def sources(self, interval: str, jitter: str = "0s") -> str:
        return "\n".join(f"  - {{name: s{i}, type: rss, url: '{self.url}/feed/{i}', interval: {interval}, "
                         f"jitter: {jitter}}}" for i in range(self.count))

    def http(self, max_concurrent: int = 16) -> str:
        """The config's ``http`` section: this server stands for many hosts (the default politeness,
        2 requests at once per host across the cluster, would make 200 feeds on one host wait for
        each other); the nodes' own listeners on free ports."""
        host = self.url.split("//", 1)[1]
        return f'http: {{bind: "127.0.0.1:0", hosts: {{"{host}": {{max_concurrent: {max_concurrent}}}}}}}'

    def __enter__(self) -> "FeedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Receiver(HostileServer):
    """A webhook receiver recording every page it read (with its arrival time).

    ``before_answer(page)`` runs after a page was read and before it is answered: a test holds the
    answer there (the sender is mid-send) or does something to the database first."""

    def __init__(self, port: int = 0, before_answer: Callable[[dict], None] | None = None):
        self.pages: list[dict] = []
        self.arrived: list[float] = []
        self.answered = 0
        self._lock = threading.Lock()

        def accept(h, stop) -> None:
            page = json.loads(h.body)
            with self._lock:
                self.pages.append(page)
                self.arrived.append(time.monotonic())
            if before_answer is not None:
                before_answer(page)
            if stop.is_set():
                return
            respond(200, b'{"ok": true}', {"Content-Type": "application/json"})(h, stop)
            with self._lock:
                self.answered += 1

        super().__init__({"/hook": accept}, port=port)

    def firing(self) -> list[dict]:
        return [p for p in self.pages if p.get("kind") == "firing"]


class Blackhole:
    """A port that takes connections into its backlog and never reads them: a sender connects and
    writes its request, which no receiver ever sees. ``close()`` drops them all (reset)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class Nodes:
    """Named `monitor run` processes on one database, one config file each (differing only in
    ``cluster.node_name``); their logs next to the configs."""

    def __init__(self, tmp: Path, db, model: Path, body: str, *, dead_after: str = "5s"):
        self.tmp, self.db, self.model, self.body, self.dead_after = tmp, db, model, body, dead_after
        self.procs: dict[str, DaemonProcess] = {}

    def config(self, name: str) -> Path:
        path = self.tmp / f"{name}.yaml"
        path.write_text(config_text(data_dir=self.tmp / name, db_url=self.db.url, model=self.model, body=f"""
cluster: {{enabled: true, node_name: {name}, dispatch_every: 1s, heartbeat: 1s, dead_after: {self.dead_after}}}
{self.body}"""), encoding="utf-8")
        return path

    def start(self, *names: str, wait: bool = True) -> None:
        for name in names:
            (self.tmp / name).mkdir(exist_ok=True)
            self.procs[name] = DaemonProcess(self.config(name), self.tmp / f"{name}.log").start()
        if wait:
            for name in names:
                self.procs[name].wait_for(f"node {name} joined the cluster", 60)

    def __getitem__(self, name: str) -> DaemonProcess:
        return self.procs[name]

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.proc is not None and p.proc.poll() is None]

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name in self.alive():
            codes[name] = self.procs[name].terminate()[0]
        return codes

    def ensure_stopped(self) -> None:
        for p in self.procs.values():
            p.ensure_stopped()

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"== {n}\n{p.output()[-tail:]}" for n, p in self.procs.items())

    # -- what the database says -------------------------------------------------------------------
    def sql(self, query: str, **params):
        with self.db.session() as s:
            return s.execute(text(query), params).all()

    def leader(self) -> str | None:
        rows = self.sql("SELECT node_name FROM cluster_leases WHERE name = 'rules'")
        return rows[0][0] if rows else None

    def members(self) -> set[str]:
        return {r[0] for r in self.sql("SELECT name FROM cluster_nodes")}

    def polled_by(self) -> dict[str, str | None]:
        return dict(self.sql("SELECT name, polled_by FROM source_state"))

    def mention_counts(self) -> tuple[int, int]:
        return tuple(self.sql("SELECT count(*), count(DISTINCT source || ':' || external_id) FROM mentions")[0])

    def stored(self) -> set[tuple[str, str]]:
        return {(s, e) for s, e in self.sql("SELECT source, external_id FROM mentions")}

    def incidents(self) -> list[tuple]:
        return self.sql("SELECT id, rule, status FROM incidents ORDER BY id")
