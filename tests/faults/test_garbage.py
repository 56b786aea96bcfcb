"""Garbage next to health: one real daemon polls a dozen hostile sources beside two healthy ones.

Every healthy item arrives exactly once; every hostile source fails (or is skipped) with its own
reason, recorded in its source state — the trickle cut at its deadline, the 50 MB bodies refused,
the redirect loop, 500 and 429 named — and none of them slows the healthy sources or the shutdown."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from sqlalchemy import select

from monitor.storage.models import IncidentRow, MentionRow
from tests.faults.hostile import HostileServer, dynamic, flood, redirect, respond, trickle
from tests.faults.proc import DaemonProcess, config_text, mention_counts, source_state, stored_ids
from tests.source_helpers import FEEDS, RSS_TYPE
from tests.test_source_hostile import BOMBS

HEALTHY = 60  # items of each healthy feed, released 10 per request
GRACE = 4  # scheduler.shutdown_grace, the default


def rss(items: list[tuple[str, str, str | None]]) -> bytes:
    """An RSS document of (guid, text, pubDate) items."""
    body = "".join(f"<item><guid>{g}</guid><title>{t[:20]}</title><description>{t}</description>"
                   + (f"<pubDate>{d}</pubDate>" if d else "") + "</item>" for g, t, d in items)
    return f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


def healthy_feeds():
    """Two feeds that grow by 10 items per request, up to HEALTHY each."""
    released = {"rss": 0, "json": 0}
    lock = threading.Lock()
    now = datetime.now(timezone.utc)

    def grow(kind: str) -> int:
        with lock:
            released[kind] = min(HEALTHY, released[kind] + 10)
            return released[kind]

    def rss_feed():
        n = grow("rss")
        items = [(f"r{i}", f"星河手机第{i}条评论，用了一周感觉不错，续航还可以", format_datetime(now - timedelta(minutes=i)))
                 for i in range(n)]
        return respond(200, rss(items), {"Content-Type": RSS_TYPE})

    def json_feed():
        n = grow("json")
        doc = {"version": "https://jsonfeed.org/version/1.1", "title": "t",
               "items": [{"id": f"j{i}", "content_text": f"星河手机JSON第{i}条：拍照清楚，屏幕细腻，值得购买",
                          "date_published": (now - timedelta(minutes=i)).isoformat()} for i in range(n)]}
        return respond(200, json.dumps(doc, ensure_ascii=False).encode(), {"Content-Type": "application/feed+json"})

    return {"/rss": dynamic(rss_feed), "/json": dynamic(json_feed)}


def cycle(bodies: list[bytes], content_type: str):
    state = {"n": 0}

    def next_body():
        body = bodies[state["n"] % len(bodies)]
        state["n"] += 1
        return respond(200, body, {"Content-Type": content_type})
    return dynamic(next_body)


def declared_huge(h, stop) -> None:
    """Content-Length: 50 MB, then a trickle: refused by the header, nothing read."""
    h.send_response(200)
    h.send_header("Content-Type", RSS_TYPE)
    h.send_header("Content-Length", str(50 * 1024 * 1024))
    h.end_headers()
    h.wfile.write(b"<rss>")
    stop.wait(5)


TRUNCATED = rss([(f"t{i}", f"星河手机截断测试第{i}条，内容完整可读", None) for i in range(4)])
TRUNCATED = TRUNCATED[:TRUNCATED.index("截断测试第3条".encode()) + 4]  # cut inside item t3, mid-character
ABSURD = rss([(f"ok{i}", f"星河手机正常评论第{i}条，说得很详细", "Tue, 11 Jun 2024 10:00:00 +0800") for i in range(5)]
             + [("y1", "公元一年的星河手机评论", "Mon, 01 Jan 0001 00:00:00 +0000"),
                ("y9999", "九九九九年的星河手机评论", "Fri, 31 Dec 9999 23:59:59 -0800"),
                ("y1969", "一九六九年的星河手机评论", "Wed, 31 Dec 1969 23:00:00 +0000"),
                ("x" * 600, "超长编号的星河手机评论", "yesterday-ish"),
                ("huge", "星河手机" * 25_000, None),
                ("empty", "", None)])

# source name -> (path, behaviour, extra settings, what its last error says)
HOSTILE = {
    "malformed": ("/malformed", respond(200, b"<rss><channel><item><title>a</titl></chanel>>>",
                                        {"Content-Type": RSS_TYPE}), {}, "not a feed: "),
    "bombs": ("/bombs", cycle([BOMBS[k].encode() for k in sorted(BOMBS)], RSS_TYPE), {},
              "refused: the document type declares XML entities"),
    "html": ("/html", respond(200, (FEEDS / "html_page.html").read_bytes(), {"Content-Type": "text/html"}), {},
             "not a feed: "),
    "wrong-shape": ("/shape", respond(200, b'{"data": {"unexpected": true}}', {"Content-Type": "application/json"}),
                    {"type": "json_api", "items": "data"}, "items expression 'data' selected dict, expected a list"),
    "huge-stream": ("/huge", flood(50 * 1024 * 1024), {"interval": "3s"},
                    "response too large: body exceeds max_bytes 10485760"),
    "huge-declared": ("/declared", declared_huge, {},
                      "response too large: Content-Length 52428800 exceeds max_bytes 10485760"),
    "trickle": ("/trickle", trickle(rss([("slow", "慢慢来", None)]), every=1.0), {"deadline": "3s"},
                "timed out after 3s reading the body"),
    "error500": ("/500", respond(500, b"oops"), {"retries": 1, "backoff": "0.1s"}, "HTTP 500 Internal Server Error"),
    "throttled": ("/429", respond(429, b"", {"Retry-After": "4"}), {}, "HTTP 429 Too Many Requests"),
    "loop": ("/loop", redirect("/loop"), {}, "too many redirects"),
}
# sources whose items (some of them) are fine: name -> (path, behaviour, settings, stored ids)
PARTLY = {
    "truncated": ("/truncated", respond(200, TRUNCATED, {"Content-Type": RSS_TYPE}), {}, {"t0", "t1", "t2"}),
    "wrong-charset": ("/gbk", respond(200, (FEEDS / "gbk_forum.xml").read_bytes(),
                                      {"Content-Type": "application/rss+xml; charset=utf-8"}), {}, None),
    "absurd": ("/absurd", respond(200, ABSURD, {"Content-Type": RSS_TYPE}), {}, None),
}


def source_yaml(name: str, url: str, extra: dict) -> str:
    settings = {"name": name, "type": "rss", "url": url, "interval": "1s", "timeout": "2s", "retries": 0} | extra
    return "  - " + json.dumps(settings, ensure_ascii=False) + "\n"


@pytest.mark.timeout(180)
def test_hostile_sources_fail_alone_and_healthy_items_arrive_exactly_once(db, tmp_path, model_file):
    bad_routes = {path: behaviour for path, behaviour, _, _ in [*HOSTILE.values(), *PARTLY.values()]}
    with HostileServer(healthy_feeds()) as good, HostileServer(bad_routes) as bad:
        bad_host = bad.url.split("//")[1]
        sources = source_yaml("healthy-rss", good.url + "/rss", {}) + source_yaml(
            "healthy-json", good.url + "/json", {"type": "jsonfeed"})
        for name, (path, _, extra, _) in [*HOSTILE.items(), *PARTLY.items()]:
            sources += source_yaml(name, bad.url + path, extra)
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(config_text(data_dir=tmp_path, db_url=db.url, model=model_file, body=f"""
http:
  bind: "127.0.0.1:0"
  hosts: {{"{bad_host}": {{max_concurrent: 20}}}}   # the hostile server's slow answers must not queue the rest
scheduler: {{shutdown_grace: {GRACE}s, rules_interval: 1s}}
topics:
  - {{name: 星河手机, keywords: [星河]}}
sources:
{sources}"""), encoding="utf-8")
        daemon = DaemonProcess(cfg, tmp_path / "daemon.log").start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if (mention_counts(db, "healthy-rss")[0] == HEALTHY and mention_counts(db, "healthy-json")[0] == HEALTHY
                        and bad.hits["/bombs"] >= len(BOMBS) and bad.hits["/trickle"] >= 2):
                    break
                time.sleep(0.5)
            time.sleep(2)  # more polls of everything: nothing arrives twice
            code, took = daemon.terminate()
        finally:
            daemon.ensure_stopped()
        log = daemon.output()

    for name in ("healthy-rss", "healthy-json"):
        rows, distinct = mention_counts(db, name)
        assert (rows, distinct) == (HEALTHY, HEALTHY), (name, rows, distinct)
    assert set(stored_ids(db, "healthy-rss")) == {f"r{i}" for i in range(HEALTHY)}
    assert set(stored_ids(db, "healthy-json")) == {f"j{i}" for i in range(HEALTHY)}

    for name, (path, _, _, reason) in HOSTILE.items():
        state = source_state(db, name)
        assert state is not None and state.consecutive_failures >= 1, (name, state and state.last_error)
        assert reason in state.last_error, (name, state.last_error)
        assert mention_counts(db, name) == (0, 0), name
    assert bad.hits["/bombs"] >= len(BOMBS)  # every placement of an entity bomb was served
    assert bad.hits["/trickle"] >= 2  # cut at its deadline and polled again, never hung
    assert bad.hits["/429"] <= 4  # slowing down: not polled every second

    assert set(stored_ids(db, "truncated")) == PARTLY["truncated"][3]
    with db.session() as s:
        gbk = s.scalars(select(MentionRow.text).where(MentionRow.source == "wrong-charset")).all()
        absurd = dict(s.execute(select(MentionRow.external_id, MentionRow.published_at)
                                .where(MentionRow.source == "absurd")).all())
        health = set(s.scalars(select(IncidentRow.topic).where(IncidentRow.rule == "数据源异常")))
    assert gbk and any("充电时背面烫得拿不住" in t for t in gbk)  # GBK declared as UTF-8: detected, no mojibake
    assert mention_counts(db, "wrong-charset")[0] == len(gbk) == mention_counts(db, "wrong-charset")[1]
    assert {f"ok{i}" for i in range(5)} | {"y1", "y9999", "y1969", "huge"} <= set(absurd)  # the empty one: skipped
    assert len(absurd) == 10 and mention_counts(db, "absurd") == (10, 10)
    assert {"malformed", "bombs", "html", "error500", "loop"} <= health  # 数据源异常: 3 failures in a row
    assert not health & {"healthy-rss", "healthy-json", "truncated", "wrong-charset", "absurd"}

    assert code == 0 and took < GRACE, (code, took)  # a trickle was in flight: cancelled, not waited for
    assert "Traceback" not in log
    print(f"\n[faults] garbage: healthy 2×{HEALTHY} stored once each (lost 0, duplicated 0); "
          f"trickle polls {bad.hits['/trickle']}, bomb polls {bad.hits['/bombs']}, 429 polls {bad.hits['/429']}; "
          f"SIGTERM exit {took:.2f}s")
