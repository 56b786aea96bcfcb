"""The demo feed server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote

import feedparser
import httpx
import pytest

from monitor.app.demo_feed import DemoFeedServer, ScenarioItem, load_scenario

BUNDLED = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "scenario.jsonl"
T0 = datetime(2024, 6, 11, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _row(id: str, offset: float, text: str, **extra: object) -> dict:
    row = {"id": id, "offset": offset, "author": f"user-{id}", "text": text,
           "url": f"https://weibo.com/123/{id}", "followers": 10}
    row.update(extra)
    return row


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    return _write(tmp_path / "s.jsonl", [
        _row("old", -3600, "鲜丰奶茶的杨枝甘露很好喝"),
        _row("a", 10, "喝完鲜丰奶茶拉肚子 <要求> 退款 & 维权"),
        _row("b", 20, "鲜丰奶茶客服不理人[怒]"),
    ])


def _guids(body: bytes) -> list[str]:
    return [e.id for e in feedparser.parse(body).entries]


def test_items_appear_when_their_time_comes(scenario: Path) -> None:
    clock = FakeClock(T0)
    with DemoFeedServer(scenario, clock=clock, run_id="r1") as srv, httpx.Client() as client:
        r = client.get(srv.url)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/rss+xml; charset=utf-8"
        assert _guids(r.content) == ["r1-old"]

        clock.advance(10)
        assert _guids(client.get(srv.url).content) == ["r1-a", "r1-old"]

        clock.advance(15)
        feed = feedparser.parse(client.get(srv.url).content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert [e.id for e in feed.entries] == ["r1-b", "r1-a", "r1-old"]  # newest first
        a = feed.entries[1]
        assert a.description == "喝完鲜丰奶茶拉肚子 <要求> 退款 & 维权"
        assert a.link == "https://weibo.com/123/a"
        assert a.author == "user-a"
        assert a.title == "喝完鲜丰奶茶拉肚子 <要求> 退款 & 维权"[:30]
        assert parsedate_to_datetime(a.published) == T0 + timedelta(seconds=10)
        assert parsedate_to_datetime(feed.entries[2].published) == T0 - timedelta(hours=1)


def test_max_items_keeps_newest(scenario: Path) -> None:
    clock = FakeClock(T0 + timedelta(minutes=5))
    with DemoFeedServer(scenario, clock=clock, start_time=T0, run_id="x", max_items=2) as srv:
        assert _guids(httpx.get(srv.url).content) == ["x-b", "x-a"]


def test_url_is_rsshub_style_and_run_id_defaults_to_start_epoch(scenario: Path) -> None:
    clock = FakeClock(T0 + timedelta(seconds=30))
    with DemoFeedServer(scenario, clock=clock, start_time=T0) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        assert unquote(srv.url).endswith("/weibo/keyword/鲜丰奶茶")
        assert srv.run_id == str(int(T0.timestamp())) == "1718107200"
        guids = _guids(httpx.get(srv.url).content)
    assert guids == ["1718107200-b", "1718107200-a", "1718107200-old"]


def test_start_time_defaults_to_clock_now(scenario: Path) -> None:
    clock = FakeClock(T0)
    with DemoFeedServer(scenario, clock=clock) as srv:
        assert srv.start_time == T0
    with pytest.raises(ValueError, match="timezone-aware"):
        DemoFeedServer(scenario, start_time=datetime(2024, 1, 1))


def test_etag_and_if_none_match(scenario: Path) -> None:
    clock = FakeClock(T0)
    with DemoFeedServer(scenario, clock=clock) as srv, httpx.Client() as client:
        first = client.get(srv.url)
        etag = first.headers["etag"]
        assert etag.startswith('"') and len(etag) > 10

        again = client.get(srv.url, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag

        assert client.get(srv.url, headers={"If-None-Match": '"stale"'}).status_code == 200

        clock.advance(11)  # item "a" becomes visible -> content and ETag change
        changed = client.get(srv.url, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert len(_guids(changed.content)) == 2


def test_unknown_path_is_404_and_healthz_is_ok(scenario: Path) -> None:
    with DemoFeedServer(scenario) as srv, httpx.Client() as client:
        base = srv.url.split("/weibo/")[0]
        assert client.get(base + "/nope").status_code == 404
        assert client.get(base + "/weibo/keyword/other").status_code == 404
        health = client.get(base + "/healthz")
        assert (health.status_code, health.text.strip()) == (200, "ok")


def test_stop_releases_the_port(scenario: Path) -> None:
    srv = DemoFeedServer(scenario).start()
    url = srv.url
    assert httpx.get(url).status_code == 200
    srv.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", ""),
        (json.dumps({"id": "x", "offset": 1}), "missing field"),
        (json.dumps(_row("x", "soon", "鲜丰")), "offset"),
        (json.dumps(_row("x", 1, "鲜丰", followers=True)), "followers"),
        (json.dumps(_row("x", 1, "鲜丰", url="weibo.com/1")), "url"),
        (json.dumps(_row("ok", 2, "鲜丰")), "duplicate id"),
    ],
)
def test_bad_scenario_line_names_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_row("ok", 1, "鲜丰奶茶"), ensure_ascii=False)
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"bad\.jsonl:3: .*{needle}"):
        load_scenario(path)
    with pytest.raises(ValueError, match=r"bad\.jsonl:3"):
        DemoFeedServer(path)


def test_bundled_scenario_has_history_and_burst() -> None:
    items = load_scenario(BUNDLED)
    assert all(isinstance(it, ScenarioItem) for it in items)
    history = [it for it in items if it.offset < 0]
    burst = [it for it in items if it.offset > 0]
    assert 45 <= len(history) <= 80
    assert 80 <= len(burst) <= 120
    assert min(it.offset for it in history) >= -10800
    assert max(it.offset for it in history) <= -30
    assert 15 <= burst[0].offset <= 30 and burst[-1].offset <= 200
    # the burst ramps up: the peak minute is far denser than the first 30 s
    assert sum(it.offset < 45 for it in burst) < sum(60 <= it.offset < 90 for it in burst)
    assert all("鲜丰" in it.text for it in items)
    assert sum(any(w in it.text for w in ("投诉", "维权", "退款", "拉肚子")) for it in burst) >= 0.7 * len(burst)
    assert sum(any(w in it.text for w in ("投诉", "维权", "退款", "拉肚子")) for it in history) <= 3
    assert len({it.id for it in items}) == len(items)
    assert all(it.url.startswith("https://weibo.com/") for it in items)


def test_bundled_scenario_is_served_in_full_at_the_end() -> None:
    clock = FakeClock(T0 + timedelta(seconds=300))
    with DemoFeedServer(BUNDLED, clock=clock, start_time=T0, max_items=1000) as srv:
        feed = feedparser.parse(httpx.get(srv.url).content)
    assert not feed.bozo
    assert len(feed.entries) == len(load_scenario(BUNDLED))
    assert all("鲜丰" in e.description for e in feed.entries)
    assert all(e.title == e.description[:30].strip() for e in feed.entries)
    assert max(len(e.description) for e in feed.entries) > 30  # titles really are truncated
